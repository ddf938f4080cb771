"""structlog setup: key-value events, JSON lines under systemd, readable on a terminal.

Log records are handed to a background thread through a queue, so a slow SD card never stalls
the state thread or a gate. Every line carries site and booth; device threads bind ``device``.
A last processor masks anything shaped like an 18-character ID number, as a safety net: the
code must never log one in the first place.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from drivers.threads import name_this_thread
from gated.config import LogFormat, LogLevel

_ID_SHAPED = re.compile(r"(?<![0-9])([1-9][0-9]{5})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9])")
_listener: logging.handlers.QueueListener | None = None


def _mask_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str) and _ID_SHAPED.search(value):
            event[key] = _ID_SHAPED.sub(r"\1********\2", value)
    return event


def configure_logging(level: LogLevel = LogLevel.INFO, fmt: LogFormat = LogFormat.AUTO, *,
                      site: str = "", booth: str = "", stream: TextIO | None = None) -> None:
    """Idempotent; call once at start-up (and again on reload)."""
    global _listener
    out = stream or sys.stderr
    if fmt == LogFormat.AUTO:
        fmt = LogFormat.CONSOLE if out.isatty() else LogFormat.JSON
    renderer: Any = (structlog.processors.JSONRenderer(ensure_ascii=False)
                     if fmt == LogFormat.JSON else structlog.dev.ConsoleRenderer(colors=False))
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    if _listener is not None:
        _listener.stop()
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = _NamedListener(q, handler)
    _listener.start()
    atexit.register(shutdown_logging)
    root = logging.getLogger("gated")
    root.handlers[:] = [logging.handlers.QueueHandler(q)]
    root.propagate = False
    root.setLevel(logging.DEBUG)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _static_context(site, booth),
            structlog.processors.format_exc_info,
            _mask_ids,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, str(level).upper())),
        logger_factory=_GatedLoggerFactory(),
        cache_logger_on_first_use=False,
    )


class _NamedListener(logging.handlers.QueueListener):
    """The log writer's thread, named ``gated-log`` for ``top -H``."""

    def _monitor(self) -> None:
        name_this_thread("gated-log")
        super()._monitor()  # type: ignore[misc]


def shutdown_logging() -> None:
    """Flush queued lines; the daemon calls this on exit."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def _static_context(site: str, booth: str) -> Any:
    def add(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if site:
            event.setdefault("site", site)
        if booth:
            event.setdefault("booth", booth)
        return event
    return add


class _GatedLoggerFactory:
    def __call__(self, *args: Any) -> logging.Logger:
        return logging.getLogger("gated")
