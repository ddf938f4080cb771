"""The control socket's subscribe mode, the daemon's side: committed events out to local
subscribers (the hall's web process), without ever holding up the state thread.

``publish`` is a ``StateLoop.on_commit`` listener: it runs on the state thread after every
commit and only hands the batch's events to each subscriber's bounded queue (``put_nowait``).
A subscriber whose queue is full has fallen behind: it is marked dropped and let go (logged
``control_subscriber_dropped``); its own thread says so on the socket and closes it, and the
subscriber must resubscribe, which starts with a fresh status. Serialising and writing happen
on the subscriber's connection thread, whose socket writes time out, so a web process that hangs
or dies costs the daemon one thread and a bounded queue until it is dropped. Nothing is lost:
the outbox is the store, this is a view.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from gated.state import Event, EventType

log = structlog.get_logger(__name__)

QUEUE_BATCHES = 1024  # committed batches a subscriber may be behind before it is dropped
MAX_SUBSCRIBERS = 8
SEND_TIMEOUT_S = 5.0  # a subscriber that takes no bytes for this long is let go
MIN_STATUS_INTERVAL_S = 0.5
QUEUE_SETTLE_S = 0.25  # a status follows queue changes this soon (coalesced)
#: Events after which a subscriber gets a fresh status soon (waiting counts, cases, notice).
STATUS_AFTER = frozenset({
    EventType.TICKET_ISSUED, EventType.TICKET_CALLED, EventType.TICKET_CLOSED,
    EventType.ASSIST_REQUEST, EventType.ASSIST_ACK, EventType.ESCALATION, EventType.DEVICE_STATE,
    EventType.TICKET_REPRINT, EventType.TICKET_PRINTED, EventType.RATING, EventType.CALLBACK,
    EventType.COUNTER, EventType.NOTICE, EventType.UPLINK_CONNECTED})


class _Subscriber:
    def __init__(self, size: int) -> None:
        self.queue: queue.Queue[list[Event]] = queue.Queue(size)
        self.dropped = False


class EventStream:
    """Fan-out of committed events to at most ``max_subscribers`` subscribers."""

    def __init__(self, site: str, booth: str, status: Callable[[], dict[str, Any]], *,
                 session: int = 0, max_subscribers: int = MAX_SUBSCRIBERS,
                 queue_batches: int = QUEUE_BATCHES,
                 send_timeout_s: float = SEND_TIMEOUT_S) -> None:
        self.site = site
        self.booth = booth
        self.session = session  # the daemon's run (``Outbox.session``), in every envelope
        self._status = status
        self.max_subscribers = max_subscribers
        self.queue_batches = queue_batches
        self.send_timeout_s = send_timeout_s
        self._subs: tuple[_Subscriber, ...] = ()  # replaced whole under the lock; read freely
        self._lock = threading.Lock()
        self.dropped_total = 0

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    # ------------------------------------------------------------------ state thread
    def publish(self, events: list[Event]) -> None:
        """On the state thread after a commit: a queue put per subscriber, never a wait."""
        for sub in self._subs:
            if sub.dropped:
                continue
            try:
                sub.queue.put_nowait(events)
            except queue.Full:
                sub.dropped = True
                self.dropped_total += 1
                log.warning("control_subscriber_dropped", reason="behind",
                            queued=sub.queue.qsize())

    # ------------------------------------------------------------------ connection thread
    def serve(self, conn: socket.socket, status_interval_s: float,
              stopping: threading.Event) -> None:
        """Stream to one subscriber until it goes, falls behind, or the daemon stops."""
        interval = max(MIN_STATUS_INTERVAL_S, status_interval_s)
        conn.settimeout(self.send_timeout_s)
        sub = _Subscriber(self.queue_batches)
        with self._lock:
            if len(self._subs) >= self.max_subscribers:
                full = True
            else:
                full = False
                self._subs = (*self._subs, sub)
        if full:
            log.warning("control_subscriber_refused", reason="too_many_subscribers")
            self._send(conn, {"kind": "refused", "reason": "too_many_subscribers"})
            return
        log.info("control_subscribed", subscribers=len(self._subs))
        try:
            self._stream(conn, sub, interval, stopping)
        except OSError as e:  # the subscriber went away or stopped reading
            log.info("control_subscriber_gone", error=str(e) or type(e).__name__)
        finally:
            with self._lock:
                self._subs = tuple(s for s in self._subs if s is not sub)

    def _stream(self, conn: socket.socket, sub: _Subscriber, interval: float,
                stopping: threading.Event) -> None:
        # Registered before the snapshot is read: nothing committed in between is missed.
        self._send(conn, {"kind": "status", "status": self._status()})
        next_status = time.monotonic() + interval
        while not stopping.is_set():
            if sub.dropped:
                self._send(conn, {"kind": "dropped", "reason": "behind"})
                return
            now = time.monotonic()
            if now >= next_status:
                self._send(conn, {"kind": "status", "status": self._status()})
                next_status = time.monotonic() + interval
                continue
            try:
                events = sub.queue.get(timeout=min(0.5, next_status - now))
            except queue.Empty:
                continue
            batches = [events]
            while len(batches) < 64:
                try:
                    batches.append(sub.queue.get_nowait())
                except queue.Empty:
                    break
            lines = bytearray()
            soon = False
            for batch in batches:
                for e in batch:
                    lines += b'{"kind":"event","event":'
                    lines += e.to_json_bytes(self.site, self.booth, self.session)
                    lines += b"}\n"
                    soon = soon or e.type in STATUS_AFTER
            conn.sendall(lines)
            if soon:
                next_status = min(next_status, time.monotonic() + QUEUE_SETTLE_S)

    @staticmethod
    def _send(conn: socket.socket, msg: dict[str, Any]) -> None:
        conn.sendall(orjson.dumps(msg, default=str, option=orjson.OPT_NON_STR_KEYS) + b"\n")
