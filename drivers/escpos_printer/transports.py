"""The three ways to a ticket printer, behind the few calls the driver makes.

``open_transport(config)`` returns an object with pyserial's ``write``, ``read``,
``in_waiting``, ``reset_input_buffer``, ``flush`` and ``close``:
- ``serial``: the port itself (``drivers.serial_link.open_serial``: any pyserial URL);
- ``tcp``: pyserial's own ``socket://host:port`` handler, so a network printer's raw port
  (9100) is read and written exactly like a serial line (timeouts included);
- ``usblp``: ``UsbLp``, the kernel usblp device (``/dev/usb/lp0``) opened as a file. Writes
  go through ``select`` with a timeout (a printer that stopped taking data is a timeout, not a
  hang); reads work where the printer's USB interface is bidirectional, and a one-way
  printer (``status = "none"``) is opened write-only and never read.
Every way opening fails is ``DeviceUnavailable`` naming the device.
"""

from __future__ import annotations

import errno
import os
import select
import time
from typing import Any

import serial

from drivers.base import DeviceUnavailable
from drivers.serial_link import open_serial

WRITE_TIMEOUT_S = 10.0  # a ticket is ~1-5 KB: about 1-5 s at 9600 baud


class UsbLp:
    """``/dev/usb/lp*`` with the subset of pyserial's interface the printer driver uses."""

    def __init__(self, path: str, *, timeout: float, read: bool) -> None:
        self.path = path
        self.timeout = timeout
        flags = (os.O_RDWR if read else os.O_WRONLY) | os.O_NONBLOCK | os.O_NOCTTY
        try:
            self._fd: int | None = os.open(path, flags)
        except OSError as e:
            raise DeviceUnavailable(f"cannot open {path}: {e}") from e
        self._readable = read

    def _need(self) -> int:
        if self._fd is None:
            raise serial.SerialException(f"{self.path} is closed")
        return self._fd

    def write(self, data: bytes) -> int:
        fd = self._need()
        view = memoryview(data)
        deadline = time.monotonic() + WRITE_TIMEOUT_S
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise serial.SerialTimeoutException(f"{self.path} took no data for "
                                                    f"{WRITE_TIMEOUT_S:g} s")
            _, ready, _ = select.select([], [fd], [], left)
            if not ready:
                continue
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue
        return len(data)

    @property
    def in_waiting(self) -> int:
        if not self._readable:
            return 0
        ready, _, _ = select.select([self._need()], [], [], 0)
        return 1 if ready else 0

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes, waiting at most ``timeout`` for the first one."""
        if not self._readable:
            return b""
        fd = self._need()
        ready, _, _ = select.select([fd], [], [], self.timeout)
        if not ready:
            return b""
        try:
            return os.read(fd, max(1, size))
        except BlockingIOError:
            return b""
        except OSError as e:
            if e.errno == errno.EAGAIN:
                return b""
            raise

    def reset_input_buffer(self) -> None:
        while self._readable and self.in_waiting:
            if not self.read(4096):
                return

    def flush(self) -> None:
        """usblp hands data to the printer as it is written: nothing is left to drain."""

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def open_transport(config: Any, *, timeout: float) -> Any:
    """The printer's link per its ``profile`` (see the module docstring)."""
    if config.profile == "usblp":
        return UsbLp(config.device, timeout=timeout, read=config.status_mode != "none")
    if config.profile == "tcp":
        return open_serial(f"socket://{config.host}:{config.tcp_port}", baudrate=9600,
                           timeout=timeout, write_timeout=WRITE_TIMEOUT_S)
    return open_serial(config.port, baudrate=config.baudrate, timeout=timeout,
                       write_timeout=WRITE_TIMEOUT_S)


__all__ = ["UsbLp", "open_transport"]
