"""Suite-wide plumbing: keep every test's captured output for the privacy scan.

``tests/test_zz_privacy.py`` runs last and greps everything the suite produced (this capture
file, every SQLite database, log and ticket under pytest's temporary directory) for the full ID
numbers and names of the test cards. This hook is what makes "every log line" true: pytest
hands each test's captured stdout, stderr and log records to ``pytest_runtest_logreport``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CAPTURE_NAME = "captured-output.log"
_capture: Path | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _capture
    factory = session.config._tmp_path_factory  # type: ignore[attr-defined]
    _capture = factory.getbasetemp() / CAPTURE_NAME


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _capture is None or not report.sections:
        return
    with open(_capture, "a", encoding="utf-8", errors="replace") as f:
        for title, text in report.sections:
            f.write(f"=== {report.nodeid} {title}\n{text}\n")
        f.flush()
        os.fsync(f.fileno())


@pytest.fixture(scope="session")
def capture_file() -> Path:
    assert _capture is not None
    return _capture
