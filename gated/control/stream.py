"""The subscribe mode of the control socket, as a client sees it.

A subscriber sends one request, ``{"stream": "events", "status_interval_s": S}``, half-closes,
and then reads JSON lines until the daemon closes the connection:

- ``{"kind": "status", "status": {...}}`` first (the same object as ``gated status``), again
  every ``S`` seconds and shortly after committed queue changes;
- ``{"kind": "event", "event": <envelope>}`` for every committed event, in ``seq`` order (the
  envelope is what the outbox stores and MQTT carries);
- ``{"kind": "dropped", "reason": "behind"}`` last, when the subscriber fell behind and the daemon
  let it go; ``{"kind": "refused", "reason": ...}`` instead of a status when it took no more.

The stream is a view, never the store: a subscriber that reconnects gets a fresh status first
and must rebuild from it (events committed while it was away are in the outbox, not replayed
here). An event committed while the subscription starts may appear both in the first status and
as an event: treat events idempotently (by ``id``). Reconnecting is the caller's job, so it can
show that it lost the daemon.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gated.control.client import ControlError
from gated.control.wire import socket_path

MAX_LINE = 4 * 1024 * 1024  # a status with many open cases is a few KiB; this is a guard


class Subscription:
    """One subscription; iterate it for messages. ``ControlError`` when the daemon is gone,
    closed the stream, or sent nothing for ``stall_s`` (its status comes every
    ``status_interval_s``, so silence means it hung)."""

    def __init__(self, state_dir: Path, *, status_interval_s: float = 2.0,
                 stall_s: float | None = None) -> None:
        self.path = socket_path(state_dir)
        self.status_interval_s = status_interval_s
        self.stall_s = stall_s if stall_s is not None else 3 * status_interval_s + 5.0
        self._sock: socket.socket | None = None

    def open(self) -> Subscription:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.stall_s)
            sock.connect(str(self.path))
            sock.sendall(json.dumps({"stream": "events",
                                     "status_interval_s": self.status_interval_s}).encode())
            sock.shutdown(socket.SHUT_WR)
        except FileNotFoundError:
            sock.close()
            raise ControlError(f"no daemon socket at {self.path}") from None
        except OSError as e:
            sock.close()
            raise ControlError(f"cannot subscribe at {self.path}: {e}") from None
        self._sock = sock
        return self

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._sock is None:
            self.open()
        assert self._sock is not None
        buf = bytearray()
        while True:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise ControlError(f"daemon sent nothing for {self.stall_s:g} s") from None
            except OSError as e:
                raise ControlError(f"stream broken: {e}") from None
            if not chunk:
                raise ControlError("daemon closed the stream")
            buf += chunk
            while (end := buf.find(b"\n")) >= 0:
                line = bytes(buf[:end])
                del buf[:end + 1]
                try:
                    msg = json.loads(line)
                except ValueError:
                    raise ControlError("daemon sent an unreadable line") from None
                if isinstance(msg, dict):
                    yield msg
                    if msg.get("kind") in ("dropped", "refused"):
                        raise ControlError(f"stream ended: {msg.get('reason')}")
            if len(buf) > MAX_LINE:
                raise ControlError("line too long")

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def __enter__(self) -> Subscription:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def subscribe(state_dir: Path, *, status_interval_s: float = 2.0) -> Subscription:
    """An open subscription (a context manager); see the module docstring."""
    return Subscription(state_dir, status_interval_s=status_interval_s).open()
