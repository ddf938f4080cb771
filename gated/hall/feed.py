"""The hall's live view of the booth: a subscription to the daemon's control socket, kept on a
thread of its own (the socket client blocks), handed to the event loop, and fanned out to the
pages that are connected (Server-Sent Events).

The daemon never waits for us: if this process hangs, the daemon drops our subscription and we
resubscribe when we can; every (re)subscription starts with a fresh status, from which the
board (calls, waiting, cases, notice) is rebuilt. While the daemon is unreachable the pages say
so (``daemon_ok: false``) and the feed retries with a capped backoff.

Each page is a ``Client`` with a bounded queue: a page that stops reading (a TV switched off
with the socket open) is dropped when its queue is full; the browser reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from gated.control import ControlError, Subscription

log = structlog.get_logger(__name__)

CLIENT_QUEUE = 200
ALERTS_KEPT = 50
RETRY_MIN_S, RETRY_MAX_S = 0.5, 5.0


@dataclass(eq=False)
class Client:
    """One connected page: ``kind`` is display | counter | pad | guard; ``counter`` for
    counter and pad pages."""

    kind: str
    counter: str | None = None
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = field(
        default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    dropped: bool = False


class Feed:
    """The latest status, today's calls and the guard's alerts, and the connected pages."""

    def __init__(self, state_dir: Path, *, status_interval_s: float = 2.0,
                 on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.state_dir = state_dir
        self.status_interval_s = status_interval_s
        self.status: dict[str, Any] = {}
        self.daemon_ok = False
        self.alerts: deque[dict[str, Any]] = deque(maxlen=ALERTS_KEPT)
        self.served: dict[str, dict[str, Any]] = {}  # counter -> last ticket served there
        self.clients: set[Client] = set()
        self.on_event = on_event
        self.on_change: Callable[[], None] | None = None
        self.events_seen = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._sub: Subscription | None = None

    # ------------------------------------------------------------------ the subscription
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="hall-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        sub = self._sub
        if sub is not None:
            sub.close()

    def _run(self) -> None:
        delay = RETRY_MIN_S
        while not self._stop.is_set():
            sub = Subscription(self.state_dir, status_interval_s=self.status_interval_s)
            self._sub = sub
            try:
                sub.open()
                for msg in sub:
                    self._hand(msg)
                    delay = RETRY_MIN_S
            except ControlError as e:
                if not self._stop.is_set():
                    self._hand({"kind": "lost", "reason": str(e)})
            finally:
                sub.close()
            self._stop.wait(delay)
            delay = min(RETRY_MAX_S, delay * 2)

    def _hand(self, msg: dict[str, Any]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(self._on_message, msg)

    # ------------------------------------------------------------------ on the event loop
    def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("kind")
        if kind == "status" and isinstance(msg.get("status"), dict):
            if not self.daemon_ok:
                log.info("hall_daemon_connected")
            self.daemon_ok = True
            self.status = msg["status"]
            self._changed()
        elif kind == "event" and isinstance(msg.get("event"), dict):
            self.events_seen += 1
            self._on_event(msg["event"])
        elif kind == "lost":
            if self.daemon_ok:
                log.warning("hall_daemon_lost", reason=msg.get("reason"))
            self.daemon_ok = False
            self._changed()

    def _on_event(self, event: dict[str, Any]) -> None:
        etype = event.get("type")
        data = event.get("data") or {}
        if etype == "ticket.closed" and data.get("state") == "served" and data.get("counter"):
            self.served[str(data["counter"])] = {
                "ticket_id": data.get("ticket_id"), "number": data.get("number"),
                "service": data.get("service"), "at": time.time()}
            self.publish("served", self.served[str(data["counter"])],
                         lambda c: c.kind == "pad" and c.counter == str(data["counter"]))
        elif etype == "rating":
            self.publish("rated", {"ticket_id": data.get("ticket_id"),
                                   "counter": data.get("counter")},
                         lambda c: c.kind == "pad")
        elif etype == "display.notice":
            queue = self.status.setdefault("queue", {})
            queue["notice"] = {"text": data.get("text", ""), "by": data.get("by")}
            self._changed()
        if etype in ALERT_TYPES:
            alert = guard_alert(event)
            self.alerts.appendleft(alert)
            self.publish("alert", alert, lambda c: c.kind == "guard")
        if self.on_event is not None:
            self.on_event(event)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # ------------------------------------------------------------------ the pages
    def add(self, client: Client) -> None:
        self.clients.add(client)

    def remove(self, client: Client) -> None:
        self.clients.discard(client)

    def publish(self, name: str, data: dict[str, Any],
                to: Callable[[Client], bool] = lambda c: True) -> None:
        """Queue a message for every page ``to`` accepts; a full page is let go."""
        for client in list(self.clients):
            if client.dropped or not to(client):
                continue
            try:
                client.queue.put_nowait((name, data))
            except asyncio.QueueFull:
                client.dropped = True
                self.clients.discard(client)
                log.warning("hall_page_dropped", page=client.kind, reason="behind")


#: Events the guard console lists and rings for.
ALERT_TYPES = frozenset({"alarm", "assist.request", "assist.ack", "escalation", "callback",
                         "printer.status", "ticket.reprint", "storage.error", "security"})
#: The only fields of an event the guard console shows: never a pseudonym or an id number.
ALERT_FIELDS = ("kind", "device", "zone", "number", "reason", "alerts", "case_id", "state",
                "raises", "level", "service", "counter", "paper", "cover_open", "by", "outcome",
                "unanswered_s", "source", "command", "passages")


def guard_alert(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data") or {}
    shown = {k: data[k] for k in ALERT_FIELDS if k in data}
    return {"id": event.get("id"), "type": event.get("type"), "ts": event.get("ts"), **shown}
