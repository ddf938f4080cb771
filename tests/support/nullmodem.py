"""Two pty pairs joined back to back, like a null-modem cable between two serial ports.

Both ends have a path (``a`` and ``b``), so two programs that each open a serial *port* by
name (pymodbus's server and our driver; a probe and a simulator) can talk: every byte
written to ``a`` is read from ``b`` and the other way round, copied by one thread.
"""

from __future__ import annotations

import os
import select
import threading
import tty


class NullModem:
    def __init__(self) -> None:
        self._fds: list[int] = []
        self._stop_r, self._stop_w = -1, -1
        self._thread: threading.Thread | None = None
        self.a = self.b = ""

    def start(self) -> NullModem:
        ma, sa = os.openpty()
        mb, sb = os.openpty()
        for fd in (sa, sb):
            tty.setraw(fd)
        self.a, self.b = os.ttyname(sa), os.ttyname(sb)
        self._fds = [ma, sa, mb, sb]
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._copy, args=(ma, mb), name="nullmodem",
                                        daemon=True)
        self._thread.start()
        return self

    def _copy(self, ma: int, mb: int) -> None:
        peer = {ma: mb, mb: ma}
        while True:
            ready, _, _ = select.select([ma, mb, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                    os.write(peer[fd], data)
                except OSError:
                    continue  # an end not open at the moment: its bytes are lost, as on a wire

    def stop(self) -> None:
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(5)
            self._thread = None
        for fd in (*self._fds, self._stop_r, self._stop_w):
            if fd >= 0:
                os.close(fd)
        self._fds, self._stop_r, self._stop_w = [], -1, -1

    def __enter__(self) -> NullModem:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
