"""The retained status message and the periodic metrics event.

``gated/v1/<site>/<booth>/status`` is retained: a monitor that subscribes late still sees every
booth. The last will sets it to offline when the connection dies without a DISCONNECT; a clean
stop publishes the offline status itself. The payload is built on this module's own thread
from ``status_fn`` (``Daemon.status``, which may wait for the state thread: never call it from a
paho callback) plus figures read from the outbox with our own read connection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from drivers.threads import named_thread
from gated import __version__
from gated.state import Batch, EventType, StateLoop, outbox_figures, utc_now_iso
from gated.uplink.connection import Connection

log = structlog.get_logger(__name__)

StatusFn = Callable[[], dict[str, Any]]


def will_payload(site: str, booth: str, session: int, connection: int,
                 keepalive_s: int) -> bytes:
    """The last will of one connection, fixed at CONNECT: what the broker publishes (retained,
    on ``status``) when it loses the booth without a DISCONNECT.

    It cannot say when the booth went silent, so it carries no ``ts``: ``connected_at`` is when
    this connection began, and the broker publishes the will at most 1.5 x ``keepalive_s``
    after the last packet it had from the booth (MQTT's keepalive rule), so the centre
    knows the booth was last heard from between its own last message from this
    ``session``/``connection`` and the will's arrival less 1.5 x ``keepalive_s``. A will whose
    (``session``, ``connection``) is below the last status seen from the booth is late and
    must be ignored: the booth is back on a newer connection.
    """
    return json.dumps({"online": False, "state": "offline", "reason": "lost", "site": site,
                       "booth": booth, "version": __version__, "session": session,
                       "connection": connection, "connected_at": utc_now_iso(),
                       "keepalive_s": keepalive_s}, separators=(",", ":")).encode()


def stopped_payload(site: str, booth: str, session: int, connection: int) -> bytes:
    """The offline status of a clean stop, published by the booth itself: ``ts`` is the
    time it stopped."""
    return json.dumps({"online": False, "state": "offline", "reason": "stopped", "site": site,
                       "booth": booth, "version": __version__, "session": session,
                       "connection": connection, "ts": utc_now_iso()},
                      separators=(",", ":")).encode()


class StatusPublisher:
    """Publishes status every ``status_interval_s`` and on demand; emits metrics events."""

    def __init__(self, connection: Connection, status_fn: StatusFn | None,
                 reader: Callable[[], sqlite3.Connection], loop: StateLoop,
                 uplink_state: Callable[[], dict[str, Any]], status_interval_s: float,
                 metrics_interval_s: float, max_bytes: int = 256 * 1024,
                 session: int = 0) -> None:
        self.connection = connection
        self.session = session
        self.status_fn = status_fn
        self._reader_factory = reader
        self.loop = loop
        self.uplink_state = uplink_state
        self.status_interval_s = status_interval_s
        self.metrics_interval_s = metrics_interval_s
        self.max_bytes = max_bytes
        self._now = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_metrics: dict[str, int] = {}

    def start(self) -> None:
        self._stop.clear()
        self._thread = named_thread(self._run, "gated-mqtt-stat")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._now.set()
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None

    def publish_now(self) -> None:
        """Ask for a status publish soon (after CONNACK, after a command changed something)."""
        self._now.set()

    def build(self, conn: sqlite3.Connection) -> dict[str, Any]:
        topics = self.connection.topics
        base: dict[str, Any] = {}
        if self.status_fn is not None:
            try:
                base = dict(self.status_fn())
            except Exception as e:  # status must go out even if one part of it fails
                log.exception("status_fn_failed", error=repr(e))
                base = {"error": "status unavailable"}
        doc = {"version": __version__, **base, "online": True,
               "state": base.get("state", "online"), "site": topics.site,
               "booth": topics.booth, "session": self.session,
               "connection": self.connection.generation, "ts": utc_now_iso(),
               "uplink": self.uplink_state()}
        if not isinstance(base.get("outbox"), dict) or "oldest_age_s" not in base["outbox"]:
            doc["outbox"] = outbox_figures(conn)  # no daemon status behind us (tests, tools)
        return doc

    def _run(self) -> None:
        conn = self._reader_factory()
        next_status = 0.0
        next_metrics = time.monotonic() + self.metrics_interval_s
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                try:
                    if self._now.is_set() or now >= next_status:
                        self._now.clear()
                        if self.connection.connected:
                            self._publish_status(conn)
                        next_status = now + self.status_interval_s
                    if now >= next_metrics:
                        self._emit_metrics(conn)
                        next_metrics = now + self.metrics_interval_s
                except sqlite3.Error as e:  # status resumes when the file can be read again
                    log.error("status_storage_error", error=str(e))
                    next_status = next_metrics = now + self.status_interval_s
                self._now.wait(max(0.05, min(next_status, next_metrics) - time.monotonic()))
        finally:
            conn.close()

    def _publish_status(self, conn: sqlite3.Connection) -> None:
        try:
            payload = self.build(conn)
        except sqlite3.Error as e:
            log.warning("status_build_failed", error=str(e))
            return
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
        if len(body.encode()) > self.max_bytes:
            # A broker drops the connection over a packet past its limit: the status would
            # then cost the booth its link every interval. Send it without the queue's lists.
            log.warning("status_too_large", bytes=len(body.encode()), limit=self.max_bytes)
            queue = payload.get("queue")
            if isinstance(queue, dict):
                payload["queue"] = {k: v for k, v in queue.items() if not isinstance(v, list)}
            payload["truncated"] = True
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
        self.connection.publish(self.connection.topics.status, body.encode(), qos=1, retain=True)

    def _emit_metrics(self, conn: sqlite3.Connection) -> None:
        """A ``metrics`` event through the outbox: counters since the last one, and levels."""
        state = self.uplink_state()
        counters = {k: int(state.get(k, 0)) for k in ("published", "acked", "nacked",
                                                      "dead_lettered", "replays")}
        delta = {k: v - self._last_metrics.get(k, 0) for k, v in counters.items()}
        self._last_metrics = counters
        try:
            figures = outbox_figures(conn)
        except sqlite3.Error:
            figures = {}
        payload = {"interval_s": self.metrics_interval_s, "uplink": delta,
                   "connected": bool(state.get("connected")),
                   "reconnects": int(state.get("connects", 0)),
                   "outbox_depth": figures.get("depth"),
                   "oldest_age_s": figures.get("oldest_age_s"),
                   "state_commits": self.loop.commits}

        def job(b: Batch) -> None:
            b.emit(EventType.METRICS, payload)
        self.loop.post(job)
