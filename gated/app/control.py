"""Local control socket, the daemon's side: the CLI on the booth box talks to the running daemon.

A Unix socket in the state directory (mode 0660: root and the gated group only) carries one JSON
request per connection, ``{"command": name, "args": {...}}``, and one JSON reply. It reaches the
same ``CommandRegistry`` as MQTT commands, as a trusted local origin: whoever can open the
socket already owns the box, so signatures are not asked for here.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from gated.control import recv_all, socket_path
from gated.wire import PayloadError, loads_object

log = structlog.get_logger(__name__)

Dispatcher = Callable[[str, dict[str, Any]], dict[str, Any]]


class ControlServer:
    def __init__(self, state_dir: Path, dispatch: Dispatcher) -> None:
        self.path = socket_path(state_dir)
        self._dispatch = dispatch
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        os.chmod(self.path, 0o660)
        sock.listen(8)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="gated-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    reply = self._handle(recv_all(conn))
                except (OSError, ValueError) as e:
                    reply = {"ok": False, "reason": f"bad request: {e}"}
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(reply, ensure_ascii=False, default=str).encode())

    def _handle(self, raw: bytes) -> dict[str, Any]:
        try:
            req = loads_object(raw)
        except PayloadError as e:
            return {"ok": False, "reason": e.reason, "message": str(e)}
        if not isinstance(req.get("command"), str):
            return {"ok": False, "reason": "request must be {\"command\": str, \"args\": {}}"}
        args = req.get("args") or {}
        if not isinstance(args, dict):
            return {"ok": False, "reason": "args must be an object"}
        return self._dispatch(req["command"], args)
