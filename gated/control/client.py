"""Sending one command to the daemon running on this box."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from gated.control.wire import recv_all, socket_path


class ControlError(Exception):
    """The daemon could not be reached or answered nonsense."""


def call(state_dir: Path, command: str, args: dict[str, Any] | None = None,
         timeout: float = 10.0, *, actor: dict[str, str] | None = None) -> dict[str, Any]:
    """Send one command to the daemon running on this box and return its reply.

    ``actor`` says who asked (e.g. ``{"source": "hall", "role": "counter", "counter": "3",
    "clerk": "c07"}``): the daemon puts it in the command's audit event. At most 8 keys of at
    most 32 characters, string values of at most 64."""
    path = socket_path(state_dir)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            req: dict[str, Any] = {"command": command, "args": args or {}}
            if actor:
                req["actor"] = actor
            s.sendall(json.dumps(req).encode())
            s.shutdown(socket.SHUT_WR)
            raw = recv_all(s)
    except FileNotFoundError:
        raise ControlError(f"no daemon socket at {path}: is gated running with this "
                           f"state_dir?") from None
    except (OSError, ValueError) as e:
        raise ControlError(f"cannot talk to the daemon at {path}: {e}") from None
    try:
        reply = json.loads(raw)
    except ValueError as e:
        raise ControlError(f"daemon sent an unreadable reply: {e}") from None
    if not isinstance(reply, dict):
        raise ControlError("daemon sent a reply that is not an object")
    return reply
