"""The pty plumbing every device simulator shares: a port a driver opens like /dev/ttyUSB0.

A simulator subclasses ``PtySim`` and implements ``_on_data`` (bytes the driver wrote); it
may override ``_poll_timeout`` and ``_on_wake`` for time-driven behaviour (a relay flash
ending, a frame ended by silence). The base owns the pty pair, the serving thread and the
wake pipe that stops it, so ``stop()`` returns promptly from any thread, including the
serving thread itself (a simulator that "unplugs" mid-operation).

With ``link=PATH`` the port is a symlink that each ``start()`` points at the new pty, like a
``/dev/serial/by-id`` name that survives a replug.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
import types
from collections.abc import Callable
from typing import Self

import structlog

log = structlog.get_logger(__name__)


class PtySim:
    #: thread name and log event prefix, e.g. "printer_sim"
    name = "pty_sim"

    def __init__(self, *, link: str | None = None) -> None:
        self.link = link
        self._fd_lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        self._port = ""

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> str:
        """What a driver opens: the symlink when ``link`` is set, else the pty slave."""
        if self.link:
            return self.link
        if not self._port:
            raise RuntimeError("simulator not started")
        return self._port

    @property
    def tty(self) -> str:
        """The current pty slave path (``port`` may be a symlink to it)."""
        return self._port

    def start(self) -> Self:
        self._on_start()
        master, slave = os.openpty()
        tty.setraw(slave)
        self._master, self._slave, self._port = master, slave, os.ttyname(slave)
        if self.link:
            tmp = f"{self.link}.new"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(self._port, tmp)
            os.replace(tmp, self.link)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
        self._thread.start()
        log.info(f"{self.name}_started", port=self.port, tty=self._port)
        return self

    def stop(self) -> None:
        """Stop serving and close the pty; the driver's next read or write fails."""
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            os.write(self._wake_w, b"x")
            thread.join(5)
        self._close_fds()

    def unplug(self) -> None:
        """Close the pty like a pulled USB adapter: the driver's next read or write fails."""
        self.stop()

    def close(self) -> None:
        """``stop()`` and remove the ``link`` symlink."""
        self.stop()
        if self.link and os.path.islink(self.link):
            os.unlink(self.link)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: types.TracebackType | None) -> None:
        self.close()

    def _close_fds(self) -> None:
        with self._fd_lock:
            for fd in (self._master, self._slave, self._wake_r, self._wake_w):
                if fd is not None and fd >= 0:
                    os.close(fd)
            self._master = self._slave = None
            self._wake_r = self._wake_w = -1

    # ------------------------------------------------------------------ subclass hooks
    def _on_data(self, data: bytes, read_at: float) -> bool:
        """Bytes the driver wrote (``read_at`` is ``perf_counter()`` at the read).

        Return False to stop serving (the pty stays open until ``stop()``).
        """
        raise NotImplementedError

    def _on_start(self) -> None:
        """Called by ``start()`` before the pty exists: reset per-connection state here."""

    def _poll_timeout(self) -> float | None:
        """How long the serving thread may wait for bytes; None waits for ever."""
        return None

    def _on_wake(self) -> None:
        """Called each time the serving thread wakes, before any data is handled."""

    # ------------------------------------------------------------------ I/O
    def _write(self, data: bytes) -> bool:
        """Write to the driver; False (logged) when the pty is gone."""
        with self._fd_lock:
            master = self._master
            if master is None:
                return False
            try:
                os.write(master, data)
            except OSError as e:
                log.warning(f"{self.name}_write_failed", error=str(e))
                return False
        return True

    def _serve(self) -> None:
        master, wake = self._master, self._wake_r
        if master is None:
            return
        while True:
            ready, _, _ = select.select([master, wake], [], [], self._poll_timeout())
            self._on_wake()
            if wake in ready:
                return
            if master not in ready:
                continue
            try:
                data = os.read(master, 4096)
            except OSError as e:
                log.warning(f"{self.name}_read_failed", error=str(e))
                return
            if not self._on_data(data, time.perf_counter()):
                return


def run_console(actions: dict[str, Callable[[], None]], status: Callable[[], str]) -> None:
    """A line console for a simulator run by hand: each line is one of ``actions``.

    ``status`` prints after every line; ``quit``, ``unplug``, end of input or Ctrl-C end it.
    """
    while True:
        try:
            line = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            return
        if line in ("quit", "unplug"):
            return
        if line in actions:
            actions[line]()
        elif line != "status":
            print("commands:", ", ".join([*actions, "status", "unplug", "quit"]))
        print(status(), flush=True)
