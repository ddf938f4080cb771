"""Local control socket, the daemon's side: the CLI and the hall's web process on the booth box
talk to the running daemon.

A Unix socket in the state directory (mode 0660: root and the gated group only). Each connection
carries one JSON request and is served on a thread of its own (at most ``MAX_CONNECTIONS`` at
once; past that a request is answered ``busy`` at once), so a long list import or a held
subscription never blocks another command:

- ``{"command": name, "args": {...}, "actor": {...}}`` gets one JSON reply. It reaches the same
  ``CommandRegistry`` as MQTT commands, as a trusted local origin: whoever can open the socket
  already owns the box, so signatures are not asked for here. ``actor`` (optional: who did it,
  e.g. the hall's counter and clerk) goes into the command's audit event.
- ``{"stream": "events", "status_interval_s": S}`` subscribes: see ``gated.app.stream`` and the
  client, ``gated.control.stream``.
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

from drivers.threads import named_thread
from gated.app.stream import EventStream
from gated.control import recv_all, socket_path
from gated.wire import PayloadError, loads_object

log = structlog.get_logger(__name__)

Dispatcher = Callable[[str, dict[str, Any], dict[str, str] | None], dict[str, Any]]
MAX_CONNECTIONS = 32
REQUEST_TIMEOUT_S = 5.0
ACTOR_KEYS, ACTOR_KEY_LEN, ACTOR_VALUE_LEN = 8, 32, 64


class BadRequest(ValueError):
    pass


class ControlServer:
    def __init__(self, state_dir: Path, dispatch: Dispatcher,
                 stream: EventStream | None = None) -> None:
        self.path = socket_path(state_dir)
        self._dispatch = dispatch
        self._stream = stream
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        os.chmod(self.path, 0o660)
        sock.listen(16)
        sock.settimeout(5.0)  # a backstop: stop() wakes accept() by connecting to it
        self._sock = sock
        self._thread = named_thread(self._accept, "gated-control")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:  # wake the accept() so the thread sees the stop
            with contextlib.suppress(OSError), \
                    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as knock:
                knock.settimeout(1.0)
                knock.connect(str(self.path))
        if self._thread is not None:
            self._thread.join(2)
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._stop.is_set():  # stop()'s own knock, or a client too late
                conn.close()
                return
            if not self._slots.acquire(blocking=False):
                log.warning("control_busy", limit=MAX_CONNECTIONS)
                with conn:
                    self._reply(conn, {"ok": False, "reason": "busy",
                                       "message": "too many control connections"})
                continue
            named_thread(self._serve, "gated-ctl-conn", args=(conn,)).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(REQUEST_TIMEOUT_S)
                try:
                    req = _parse(recv_all(conn))
                except PayloadError as e:
                    self._reply(conn, {"ok": False, "reason": e.reason, "message": str(e)})
                    return
                except (OSError, ValueError) as e:
                    self._reply(conn, {"ok": False, "reason": f"bad request: {e}"})
                    return
                if "stream" in req:
                    self._subscribe(conn, req)
                    return
                reply = self._dispatch(req["command"], req.get("args") or {}, req.get("actor"))
                self._reply(conn, reply)
        finally:
            self._slots.release()

    def _subscribe(self, conn: socket.socket, req: dict[str, Any]) -> None:
        interval = req.get("status_interval_s", 2.0)
        if self._stream is None or req["stream"] != "events" or \
                not isinstance(interval, int | float) or isinstance(interval, bool):
            self._reply(conn, {"ok": False, "reason": "bad request: no such stream"})
            return
        self._stream.serve(conn, float(interval), self._stop)

    @staticmethod
    def _reply(conn: socket.socket, reply: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(reply, ensure_ascii=False, default=str).encode())


def _parse(raw: bytes) -> dict[str, Any]:
    req = loads_object(raw)  # bounded: depth, numbers; PayloadError with a reason
    if "stream" in req:
        return req
    if not isinstance(req.get("command"), str):
        raise BadRequest('request must be {"command": str, "args": {}}')
    if not isinstance(req.get("args") or {}, dict):
        raise BadRequest("args must be an object")
    actor = req.get("actor")
    if actor is not None and not (
            isinstance(actor, dict) and len(actor) <= ACTOR_KEYS and all(
                isinstance(k, str) and isinstance(v, str) and len(k) <= ACTOR_KEY_LEN
                and len(v) <= ACTOR_VALUE_LEN for k, v in actor.items())):
        raise BadRequest(f"actor must be an object of at most {ACTOR_KEYS} short strings")
    return req
