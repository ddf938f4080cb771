"""Suite-wide plumbing: keep every test's captured output for the privacy scan, and run the
scan last.

``tests/test_privacy.py`` greps everything the suite produced (this capture file, every SQLite
database, log and ticket under pytest's temporary directory) for the full ID numbers and names
of the test cards. ``pytest_runtest_logreport`` is what makes "every log line" true: pytest
hands each test's captured stdout, stderr and log records to it. Tests marked ``runs_last``
are moved behind every other collected test, wherever their file sorts in the tree.
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "runs_last: run after every other test of the session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    last = [i for i in items if i.get_closest_marker("runs_last")]
    if last:
        items[:] = [i for i in items if not i.get_closest_marker("runs_last")] + last


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
