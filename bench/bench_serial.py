"""CPU per serial transaction: pyserial's POSIX port against ``PosixPort``, on a pty.

A transaction is what every polling driver does: drop stale input, write an 8-byte request,
read a 6-byte reply (``read(5)`` then ``read(1)``, as the Modbus link frames it). The device
is a child process answering on the pty's master end, so only the driver side is measured
(``time.process_time`` of this process). Baseline in the same run: the same transaction in
bare ``os.write``/``select.poll``/``os.read`` calls, the least Python can do.

Two paces: back to back (the cost of the calls), and 20 a second with a sleep between (the
idle pattern of a polling driver, where each wake-up costs more than the calls).

    .venv/bin/python bench/bench_serial.py [--n 3000] [--paced 200]

Plain script; exits 0 whatever it measures.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import signal
import termios
import time
import tty
from collections.abc import Callable

import serial
from common import figure

from drivers.serial_link import PosixPort, open_serial

BENCH = "serial"
REQUEST = bytes(8)
REPLY = bytes(6)


def responder(master: int) -> int:
    child = os.fork()
    if child == 0:
        while True:
            os.read(master, 64)
            os.write(master, REPLY)
    return child


def transaction(port: serial.Serial | PosixPort) -> Callable[[], None]:
    def run() -> None:
        port.reset_input_buffer()
        port.write(REQUEST)
        got = port.read(5)
        got += port.read(1)
        assert len(got) == 6
    return run


def bare(fd: int) -> Callable[[], None]:
    poller = select.poll()
    poller.register(fd, select.POLLIN)

    def run() -> None:
        termios.tcflush(fd, termios.TCIFLUSH)
        os.write(fd, REQUEST)
        got = b""
        while len(got) < 6:
            poller.poll(200)
            got += os.read(fd, 6 - len(got))
    return run


def cpu_us(fn: Callable[[], None], n: int, pause_s: float) -> float:
    for _ in range(20):
        fn()
    start = time.process_time()
    for _ in range(n):
        fn()
        if pause_s:
            time.sleep(pause_s)
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000, help="back-to-back transactions per port")
    ap.add_argument("--paced", type=int, default=200, help="transactions at 20/s per port")
    a = ap.parse_args()
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    child = responder(master)
    path = os.ttyname(slave)
    try:
        plain = serial.Serial(path, 9600, timeout=0.2)
        fast = open_serial(path, baudrate=9600, timeout=0.2)
        assert isinstance(fast, PosixPort)
        for label, n, pause in (("back to back", a.n, 0.0), ("20 a second", a.paced, 0.05)):
            floor = cpu_us(bare(plain.fd), n, pause)
            py = cpu_us(transaction(plain), n, pause)
            ours = cpu_us(transaction(fast), n, pause)
            figure(BENCH, f"CPU per transaction, pyserial ({label})", py, "us",
                   baseline=floor, baseline_name="bare os calls", note=f"n={n}")
            figure(BENCH, f"CPU per transaction, PosixPort ({label})", ours, "us",
                   baseline=floor, baseline_name="bare os calls", note=f"n={n}")
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


if __name__ == "__main__":
    main()
