"""Suite-wide plumbing: keep every test's captured output for the privacy scan, and run the
scan last; check everything the booth produces against the MQTT contract, and fail the run
with a report when something does not match (``tests/support/contract_check.py``).

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

from tests.support import contract_check

CAPTURE_NAME = "captured-output.log"
_capture: Path | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _capture
    factory = session.config._tmp_path_factory  # type: ignore[attr-defined]
    _capture = factory.getbasetemp() / CAPTURE_NAME
    contract_check.ACTIVE = contract_check.Recorder()
    contract_check.install()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A payload that does not match the contract fails the run, whichever tests ran."""
    rec = contract_check.ACTIVE
    if rec is not None and rec.violations and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rec = contract_check.ACTIVE
    if rec is None:
        return
    terminalreporter.write_line(rec.summary())
    if rec.violations:
        terminalreporter.write_sep("=", "MQTT contract violations", red=True)
        terminalreporter.write_line(rec.report())


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
