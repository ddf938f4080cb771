"""Framing of the local control socket: one JSON document per direction per connection, the
writer half-closes when done (``shutdown(SHUT_WR)``), the reader reads to end of stream."""

from __future__ import annotations

import socket
from pathlib import Path

SOCKET_NAME = "control.sock"
MAX_MESSAGE = 64 * 1024 * 1024  # a whole list import (``gated lists import``) fits


def socket_path(state_dir: Path) -> Path:
    return Path(state_dir) / SOCKET_NAME


def recv_all(conn: socket.socket, limit: int = MAX_MESSAGE) -> bytes:
    """Everything up to end of stream; ``ValueError`` past ``limit`` bytes."""
    chunks = []
    size = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise ValueError("message too large")
        chunks.append(chunk)
    return b"".join(chunks)
