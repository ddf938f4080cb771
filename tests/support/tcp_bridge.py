"""A network printer for tests: a TCP listener on 127.0.0.1 whose connections are joined to a
simulator's pty, so a driver reaches the simulator at ``host:port`` as it would a printer's
raw port 9100. One connection at a time, like most printers."""

from __future__ import annotations

import os
import select
import socket
import threading


class TcpBridge:
    def __init__(self, tty_path: str) -> None:
        self.tty_path = tty_path
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tcp_bridge", daemon=True)
        self.connections = 0

    def start(self) -> TcpBridge:
        self._thread.start()
        return self

    def _serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            fd = os.open(self.tty_path, os.O_RDWR | os.O_NOCTTY)
            try:
                self._copy(conn, fd)
            finally:
                os.close(fd)
                conn.close()

    def _copy(self, conn: socket.socket, fd: int) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([conn, fd], [], [], 0.1)
            if conn in ready:
                data = conn.recv(4096)
                if not data:
                    return
                os.write(fd, data)
            if fd in ready:
                conn.sendall(os.read(fd, 4096))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def __enter__(self) -> TcpBridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
