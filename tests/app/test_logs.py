"""Logging: JSON lines with site/booth/device, console on a terminal, ID-shaped strings masked."""

from __future__ import annotations

import io
import json
import threading

import structlog

from gated.app.logs import configure_logging, shutdown_logging
from gated.config import LogFormat, LogLevel


def _lines(buf: io.StringIO) -> list[str]:
    shutdown_logging()  # flushes the background writer
    return [line for line in buf.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_site_booth_and_device() -> None:
    buf = io.StringIO()
    configure_logging(LogLevel.INFO, LogFormat.JSON, site="demo", booth="b1", stream=buf)
    structlog.get_logger("gated.test").bind(device="hall_gate").warning(
        "serial_open_failed", port="/dev/ttyUSB0", error="No such file")
    structlog.get_logger("gated.test").debug("not_shown")
    (line,) = _lines(buf)
    rec = json.loads(line)
    assert rec["event"] == "serial_open_failed" and rec["level"] == "warning"
    assert rec["site"] == "demo" and rec["booth"] == "b1" and rec["device"] == "hall_gate"
    assert rec["port"] == "/dev/ttyUSB0" and "timestamp" in rec


def test_id_shaped_values_are_masked() -> None:
    buf = io.StringIO()
    configure_logging(LogLevel.INFO, LogFormat.JSON, stream=buf)
    structlog.get_logger("gated.test").info("oops", detail="card 990105194912310023 read")
    out = "\n".join(_lines(buf))
    assert "990105194912310023" not in out and "990105********0023" in out


def test_console_format_is_readable() -> None:
    buf = io.StringIO()
    configure_logging(LogLevel.DEBUG, LogFormat.CONSOLE, site="demo", booth="b1", stream=buf)
    structlog.get_logger("gated.test").info("daemon_started", devices=3)
    (line,) = _lines(buf)
    assert "daemon_started" in line and "devices=3" in line and not line.startswith("{")


def test_logging_never_blocks_the_caller() -> None:
    release = threading.Event()

    class StuckStream(io.StringIO):
        def write(self, s: str) -> int:
            release.wait(10)  # an SD card in trouble
            return super().write(s)

    buf = StuckStream()
    configure_logging(LogLevel.INFO, LogFormat.JSON, stream=buf)
    log = structlog.get_logger("gated.test")
    for i in range(20):
        log.info("tick", i=i)  # returns although nothing could be written yet
    assert buf.getvalue() == ""
    release.set()
    assert len(_lines(buf)) == 20
