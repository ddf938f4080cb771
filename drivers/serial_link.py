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
"""

from __future__ import annotations

import termios

import serial
import structlog

from drivers.base import DeviceUnavailable

log = structlog.get_logger(__name__)

LINK_ERRORS = (serial.SerialException, OSError, termios.error)


def open_serial(port: str, *, baudrate: int, timeout: float,
                write_timeout: float | None = None) -> serial.SerialBase:
    try:
        return serial.serial_for_url(port, baudrate=baudrate, timeout=timeout,
                                     write_timeout=write_timeout)
    except (serial.SerialException, OSError, ValueError) as e:
        raise DeviceUnavailable(f"cannot open {port}: {e}") from e


def close_serial(ser: serial.SerialBase | None, port: str, device: str | None = None) -> None:
    """Close quietly: a port that vanished cannot be closed cleanly, and that is no news."""
    if ser is None:
        return
    try:
        ser.close()
    except LINK_ERRORS as e:
        log.warning("serial_close_failed", port=port, device=device, error=str(e))
