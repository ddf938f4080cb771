"""Modbus RTU master transport: one request, one framed reply, over a pyserial port.

Blocking and single-threaded like every driver. What a caller must know:
- Every failure is a ``DeviceError``: an OS or pyserial error (unplugged adapter, closed pty)
  is ``DeviceUnavailable``, no reply is ``DeviceTimeout``, a partial or garbled reply is a
  ``ProtocolError`` from the codec, an exception reply a ``ModbusExceptionReply``.
- Stale input is discarded before each request, so a late or garbled reply can never be
  taken for the answer to the next request.
- RTU needs 3.5 character times of silence between frames. ``transact`` waits for it when a
  request follows a reply too closely; ``quiet_at`` tells a caller when the bus is quiet so
  it can spend idle time there instead (see ``ModbusGate.poll``).
- Worst case a request takes about twice ``timeout_s``: once for the first bytes of the
  reply, once for the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import structlog

from drivers.base import DeviceTimeout, DeviceUnavailable
from drivers.modbus.rtu import FrameError, reply_length
from drivers.serial_link import LINK_ERRORS, SerialPort, close_serial, open_serial

log = structlog.get_logger(__name__)
T = TypeVar("T")


BITS_PER_CHAR = 11  # start, 8 data, parity or second stop, stop
MIN_REPLY = 5  # an exception reply: address, function | 0x80, code, CRC; all others are longer


def inter_frame_gap(baudrate: int) -> float:
    """3.5 character times; the spec fixes 1.75 ms above 19200 baud."""
    return 1.75e-3 if baudrate > 19200 else 3.5 * BITS_PER_CHAR / baudrate


class RtuLink:
    def __init__(self, port: str, *, baudrate: int, timeout_s: float) -> None:
        self.port = port
        self.baudrate = baudrate
        self.timeout_s = timeout_s
        self.gap_s = inter_frame_gap(baudrate)
        self._serial: SerialPort | None = None
        #: monotonic time from which the bus has been quiet long enough for the next request
        self.quiet_at = 0.0

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def open(self) -> None:
        if self._serial is not None:
            return
        self._serial = open_serial(self.port, baudrate=self.baudrate, timeout=self.timeout_s)

    def close(self) -> None:
        ser, self._serial = self._serial, None
        close_serial(ser, self.port)

    def transact(self, request: bytes, parse: Callable[[bytes, bytes], T]) -> T:
        """Send ``request``, frame the reply and return ``parse(request, reply)``."""
        ser = self._serial
        if ser is None:
            raise DeviceUnavailable(f"{self.port} is not open")
        wait = self.quiet_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            ser.reset_input_buffer()
            ser.write(request)
            reply = self._read_reply(ser, request)
        except LINK_ERRORS as e:
            raise DeviceUnavailable(f"{self.port}: {e}") from e
        finally:
            self.quiet_at = time.monotonic() + self.gap_s
        return parse(request, reply)

    def _read_reply(self, ser: SerialPort, request: bytes) -> bytes:
        """Two reads: the shortest reply any request can get, then the rest its header asks
        for (each read is a select and a read: an idle gate does this ten times a second)."""
        reply = bytearray(ser.read(MIN_REPLY))
        if not reply:
            raise DeviceTimeout(f"no reply within {self.timeout_s * 1000:.0f} ms")
        try:
            length = reply_length(request, bytes(reply))
        except FrameError:
            self._discard(ser)
            raise
        if length is None:
            raise FrameError(f"reply cut off after {len(reply)} bytes")
        if len(reply) < length:
            reply += ser.read(length - len(reply))
        if len(reply) < length:
            raise FrameError(f"reply cut off after {len(reply)} of {length} bytes")
        return bytes(reply)

    def _discard(self, ser: SerialPort) -> None:
        """After garbage, let the rest of it arrive and drop it so the next request is clean."""
        time.sleep(self.gap_s)
        ser.reset_input_buffer()


__all__ = ["RtuLink", "inter_frame_gap"]
