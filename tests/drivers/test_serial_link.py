"""``drivers.serial_link``: the POSIX fast path keeps pyserial's rules, on a real pty pair.

Each case runs against both implementations (pyserial's own ``serial.Serial`` and
``PosixPort``) so a difference in timeout rules or errors shows up as one failing side.
"""

from __future__ import annotations

import os
import pty
import threading
import time
import tty
from collections.abc import Iterator

import pytest
import serial

from drivers.base import DeviceUnavailable
from drivers.serial_link import LINK_ERRORS, PosixPort, SerialPort, close_serial, open_serial


@pytest.fixture
def pair() -> Iterator[tuple[int, str]]:
    """The master end (the "device") and the path of the slave end (the port)."""
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    name = os.ttyname(slave)
    yield master, name
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def _open(kind: str, path: str, *, timeout: float | None, write_timeout: float | None = None,
          ) -> SerialPort:
    if kind == "fast":
        port = open_serial(path, baudrate=9600, timeout=0.0, write_timeout=write_timeout)
        assert isinstance(port, PosixPort)
        port.ser.timeout = timeout
        return port
    return serial.Serial(path, 9600, timeout=timeout, write_timeout=write_timeout)


KINDS = ["pyserial", "fast"]


def test_device_nodes_get_the_fast_path_and_urls_keep_pyserial(pair: tuple[int, str]) -> None:
    _, path = pair
    fast = open_serial(path, baudrate=9600, timeout=0.1)
    spy = open_serial(f"spy://{path}?file=/dev/null", baudrate=9600, timeout=0.1)
    loop = open_serial("loop://", baudrate=9600, timeout=0.1)
    try:
        assert isinstance(fast, PosixPort)
        assert not isinstance(spy, PosixPort)  # spy:// traces bytes: its read must be called
        assert not isinstance(loop, PosixPort)
    finally:
        for p in (fast, spy, loop):
            close_serial(p, "test")


def test_opening_a_missing_node_is_device_unavailable() -> None:
    with pytest.raises(DeviceUnavailable, match="cannot open /dev/does-not-exist"):
        open_serial("/dev/does-not-exist", baudrate=9600, timeout=0.1)


# (bytes the device has sent, bytes asked for, port timeout, bytes expected back)
READS = [
    (b"\x01\x02\x03", 3, 0.2, b"\x01\x02\x03"),
    (b"\x01\x02\x03\x04", 2, 0.2, b"\x01\x02"),  # never more than asked
    (b"\x01", 4, 0.05, b"\x01"),  # the timeout ends a short read
    (b"", 4, 0.05, b""),  # nothing within the timeout
    (b"\x07\x08", 5, 0.0, b"\x07\x08"),  # timeout 0: what is there now
    (b"", 5, 0.0, b""),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("sent", "size", "timeout", "expected"), READS)
def test_read_follows_pyserial_timeout_rules(pair: tuple[int, str], kind: str, sent: bytes,
                                             size: int, timeout: float,
                                             expected: bytes) -> None:
    master, path = pair
    port = _open(kind, path, timeout=timeout)
    try:
        if sent:
            os.write(master, sent)
            time.sleep(0.02)
        started = time.monotonic()
        assert port.read(size) == expected
        if len(expected) < size and timeout:
            assert time.monotonic() - started >= timeout * 0.9
    finally:
        port.close()


@pytest.mark.parametrize("kind", KINDS)
def test_read_waits_for_bytes_that_come_in_pieces(pair: tuple[int, str], kind: str) -> None:
    master, path = pair
    port = _open(kind, path, timeout=None)  # None: wait as long as it takes
    writer = threading.Thread(target=lambda: [
        (time.sleep(0.02), os.write(master, bytes([i]))) for i in range(5)])
    writer.start()
    try:
        assert port.read(5) == bytes(range(5))
    finally:
        writer.join()
        port.close()


@pytest.mark.parametrize("kind", KINDS)
def test_in_waiting_and_reset_input_buffer(pair: tuple[int, str], kind: str) -> None:
    master, path = pair
    port = _open(kind, path, timeout=0.05)
    try:
        os.write(master, b"stale reply")
        time.sleep(0.02)
        assert port.in_waiting == len(b"stale reply")
        port.reset_input_buffer()
        assert port.in_waiting == 0
        assert port.read(1) == b""
    finally:
        port.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_large_write_goes_out_whole(pair: tuple[int, str], kind: str) -> None:
    """Bigger than the pty's buffer: the write must wait for room and send the rest."""
    master, path = pair
    data = bytes(range(256)) * 256  # 64 KiB
    got = bytearray()

    def drain() -> None:
        while len(got) < len(data):
            got.extend(os.read(master, 65536))

    reader = threading.Thread(target=drain)
    reader.start()
    port = _open(kind, path, timeout=0.1, write_timeout=5.0)
    try:
        assert port.write(data) == len(data)
        port.flush()
        reader.join(5)
        assert bytes(got) == data
    finally:
        port.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_write_nobody_reads_times_out(pair: tuple[int, str], kind: str) -> None:
    _, path = pair
    port = _open(kind, path, timeout=0.1, write_timeout=0.2)
    try:
        with pytest.raises(serial.SerialTimeoutException):
            port.write(bytes(1 << 20))
    finally:
        port.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_vanished_device_is_a_link_error_not_silence(pair: tuple[int, str],
                                                       kind: str) -> None:
    """The other end closed (an unplugged adapter looks the same): reads must fail at once,
    with an error in LINK_ERRORS, so the driver goes offline instead of timing out forever."""
    master, path = pair
    port = _open(kind, path, timeout=0.5)
    try:
        os.close(master)
        started = time.monotonic()
        with pytest.raises(LINK_ERRORS):
            port.read(4)
        assert time.monotonic() - started < 0.4
    finally:
        close_serial(port, "test")
