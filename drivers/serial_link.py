"""Opening and closing a serial port the way every serial driver must.

What a caller must know:
- ``port`` is anything ``serial.serial_for_url`` takes (``/dev/ttyUSB0``, a
  ``/dev/serial/by-id`` link, ``rfc2217://host:port``, ``spy://`` to trace bytes).
- ``open_serial`` turns every way opening can fail (no such node, permission, a bad URL, a
  device busy) into ``DeviceUnavailable`` naming the port, which the supervisor turns into
  device state and a reopen with backoff.
- ``LINK_ERRORS`` is what a read or write on an open port raises when the device vanishes:
  ``termios.error`` is not an ``OSError``, and pyserial lets it through from ``tcflush`` on a
  closed pty, so catching ``OSError`` alone is not enough.
- A device node or a pty comes back as a ``PosixPort``: the same ``read``, ``write``,
  ``reset_input_buffer``, ``in_waiting``, ``flush`` and ``close`` with pyserial's timeout
  rules and errors, for less CPU per call (bench/bench_serial.py prints both beside bare os
  calls). Every other URL comes back as pyserial made it. Drivers use only the
  ``SerialPort`` methods, so either will do.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import struct
import termios
import time
from typing import Protocol

import serial
import structlog

from drivers.base import DeviceUnavailable

log = structlog.get_logger(__name__)

LINK_ERRORS = (serial.SerialException, OSError, termios.error)
_RETRY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)
_TIOCINQ = getattr(termios, "TIOCINQ", 0x541B)
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


class SerialPort(Protocol):
    """What drivers may call on an open port (pyserial's names and meaning)."""

    @property
    def in_waiting(self) -> int: ...
    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes, /) -> int | None: ...
    def reset_input_buffer(self) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


def open_serial(port: str, *, baudrate: int, timeout: float,
                write_timeout: float | None = None) -> SerialPort:
    try:
        ser = serial.serial_for_url(port, baudrate=baudrate, timeout=timeout,
                                    write_timeout=write_timeout)
    except (serial.SerialException, OSError, ValueError) as e:
        raise DeviceUnavailable(f"cannot open {port}: {e}") from e
    if type(ser) is serial.Serial and os.name == "posix":  # not spy://, a subclass
        return PosixPort(ser)
    return ser


class PosixPort:
    """A pyserial POSIX port whose reads and writes go straight to its file descriptor.

    Why: pyserial's ``read`` costs a ``select`` of two descriptors and a ``Timeout`` object
    per call, its ``write`` a ``select`` after every write even when all bytes went out, and
    ``in_waiting`` a ``struct`` round trip; a booth makes 5 such transactions a second idle
    and 30 more per visitor. The rules are pyserial's: ``read(n)`` returns when ``n`` bytes
    are in or the port's timeout has passed (None: wait for them, 0: what is there now);
    ``write`` sends everything, waiting at most the write timeout. A vanished device raises
    ``serial.SerialException`` as pyserial does (readable but no data, ``EIO``, a hang-up);
    pyserial's ``cancel_read``/``cancel_write`` are not offered (no driver uses them).
    Settings (baud rate, timeouts) are read from and closed through the pyserial object.
    """

    def __init__(self, ser: serial.Serial) -> None:
        self.ser = ser
        self.fd: int = ser.fd
        self._readable = select.poll()
        self._readable.register(self.fd, select.POLLIN)
        self._writable = select.poll()
        self._writable.register(self.fd, select.POLLOUT)
        self._inq = bytearray(4)

    @property
    def in_waiting(self) -> int:
        try:
            fcntl.ioctl(self.fd, _TIOCINQ, self._inq)
        except OSError as e:
            raise serial.SerialException(f"in_waiting failed: {e}") from e
        return int(struct.unpack("I", self._inq)[0])

    def reset_input_buffer(self) -> None:
        termios.tcflush(self.fd, termios.TCIFLUSH)

    def read(self, size: int = 1) -> bytes:
        timeout = self.ser.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        out = b""
        while len(out) < size:
            if deadline is None:
                ms = -1
            else:
                left = deadline - time.monotonic()
                if left <= 0 and timeout:
                    break
                ms = max(0, int(left * 1000 + 0.999))
            events = self._readable.poll(ms)
            if not events:
                break
            try:
                chunk = os.read(self.fd, size - len(out))
            except OSError as e:
                if e.errno in _RETRY:
                    continue
                raise serial.SerialException(f"read failed: {e}") from e
            if not chunk:
                raise serial.SerialException(
                    "device reports readiness to read but returned no data (device "
                    "disconnected or multiple access on port?)")
            out += chunk
            if timeout == 0:
                break
        return out

    def write(self, data: bytes, /) -> int:
        view = memoryview(data)
        timeout = self.ser.write_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError as e:
                if e.errno not in _RETRY:
                    raise serial.SerialException(f"write failed: {e}") from e
                n = 0
            view = view[n:]
            if not view:
                break
            ms = -1 if deadline is None else int((deadline - time.monotonic()) * 1000)
            if deadline is not None and ms <= 0:
                raise serial.SerialTimeoutException("Write timeout")
            for _fd, ev in self._writable.poll(ms):
                if ev & _GONE and not ev & select.POLLOUT:
                    raise serial.SerialException("write failed: the device hung up")
        return len(data)

    def flush(self) -> None:
        """Wait until every written byte has left the UART (pyserial's ``flush``)."""
        termios.tcdrain(self.fd)

    def close(self) -> None:
        self.ser.close()


def close_serial(ser: SerialPort | None, port: str, device: str | None = None) -> None:
    """Close quietly: a port that vanished cannot be closed cleanly, and that is no news."""
    if ser is None:
        return
    try:
        ser.close()
    except LINK_ERRORS as e:
        log.warning("serial_close_failed", port=port, device=device, error=str(e))
