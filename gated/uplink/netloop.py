"""One thread for the MQTT socket and the outbox drain: paho's external-loop API, ``select()``
on the socket and a wake pipe.

Why not paho's ``loop_start()``: its thread and a drain thread of our own both woke for every
event (the drain to publish it, paho to write it; paho to read the PUBACK, the drain to take
it), about six wake-ups an event and most of the uplink's CPU at visitor rates. Here one
thread does both: an event costs the wake-up of its commit and the one of its PUBACK.

What a caller must know:
- Only this thread reads and writes the socket. A publish from another thread only queues
  the packet (paho never writes from the caller while ``on_socket_register_write`` is set),
  and ``wake()`` gets it written now; ``Connection.publish`` does both.
- The ``Worker`` runs on this thread between socket events: ``step()`` after every wake-up
  (it must not block), ``timeout()`` says how long it may sleep. Messages it gets from other
  threads must come with a ``wake()``.
- paho's ``loop_misc`` (keepalive PINGREQ, the PINGRESP timeout) runs every ``misc_s``;
  a quiet connection costs one wake-up per ``misc_s``, not one a second.
"""

from __future__ import annotations

import os
import select
import threading
import time
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode


class Worker(Protocol):
    """What the network thread runs besides the socket (``Connection.worker``)."""

    def open(self) -> None:
        """On the network thread, when it starts."""

    def close(self) -> None:
        """On the network thread, when it ends (after the last connection)."""

    def step(self) -> None:
        """Handle what arrived, send what is due; never block."""

    def timeout(self) -> float:
        """Seconds until ``step()`` has something to do without being woken."""


def misc_interval(keepalive_s: int) -> float:
    """How often paho's keepalive bookkeeping runs: a quarter of the keepalive (a PINGREQ goes
    out at most that late; the broker waits one and a half keepalives), 1-10 s."""
    return max(1.0, min(10.0, keepalive_s / 4))


class NetLoop:
    """The select loop; ``open()`` makes the wake pipe, ``close()`` closes it."""

    def __init__(self) -> None:
        self._r = -1
        self._w = -1
        self._ident: int | None = None

    def open(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)

    def close(self) -> None:
        for fd in (self._r, self._w):
            if fd >= 0:
                os.close(fd)
        self._r = self._w = -1

    def wake(self) -> None:
        """From any thread: end the current wait now. A no-op on the loop's own thread (it
        looks at the worker and the write queue before it waits again)."""
        if self._ident == threading.get_ident() or self._w < 0:
            return
        try:
            os.write(self._w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: a wake-up is pending already
        except OSError:  # closed under us by close(): nobody is waiting any more
            pass

    def serve(self, client: mqtt.Client, done: threading.Event, worker: Worker,
              misc_s: float) -> None:
        """Run ``client``'s socket and ``worker`` until ``done`` is set or the socket closes
        (paho's ``on_disconnect`` has run by then)."""
        self._ident = threading.get_ident()
        client.on_socket_register_write = lambda c, u, s: self.wake()
        next_misc = time.monotonic() + misc_s
        try:
            while not done.is_set():
                worker.step()
                if client.want_write():
                    client.loop_write()  # the socket is writable nearly always: no wait
                sock: Any = client.socket()  # a socket or an SSL socket
                if sock is None or done.is_set():
                    return
                pending = sock.pending() if hasattr(sock, "pending") else 0  # TLS: decrypted
                now = time.monotonic()
                wait = 0.0 if pending else max(0.0, min(worker.timeout(), next_misc - now))
                wlist = [sock] if client.want_write() else []
                try:
                    readable, writable, _ = select.select([sock, self._r], wlist, [], wait)
                except (OSError, ValueError, TypeError):  # closed between the checks
                    if client.socket() is None:
                        return
                    raise
                if self._r in readable:
                    self._drain_pipe()
                if sock in readable or pending:
                    client.loop_read()
                if writable and client.socket() is not None:
                    client.loop_write()
                if time.monotonic() >= next_misc and client.socket() is not None:
                    client.loop_misc()
                    next_misc = time.monotonic() + misc_s
        finally:
            self._ident = None

    def flush(self, client: mqtt.Client, limit_s: float) -> None:
        """Write what is queued (the DISCONNECT) for up to ``limit_s``; paho closes the socket
        once a DISCONNECT is out."""
        deadline = time.monotonic() + limit_s
        while client.want_write() and time.monotonic() < deadline:
            sock = client.socket()
            if sock is None:
                return
            try:
                select.select([], [sock], [], max(0.0, deadline - time.monotonic()))
            except (OSError, ValueError, TypeError):
                return
            if client.loop_write() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return

    def _drain_pipe(self) -> None:
        try:
            while os.read(self._r, 512):
                pass
        except BlockingIOError:
            pass
