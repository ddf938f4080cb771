"""The MQTT uplink: what leaves the booth, what the centre sends down.

Threads: ``gated-mqtt-net`` (the socket, and the outbox drain between socket events; paho's
callbacks only enqueue), ``gated-mqtt-stat`` (retained status, metrics events) and
``gated-mqtt-rpc`` (commands, list sync). None of them writes SQLite: acks, refusals, list
changes and events are posted to the state thread. Each reads the outbox through its own
``store.reader()`` connection.

``reload(new_cfg)`` reconnects with the new settings and keeps the outbox as it is: the drain
simply replays from the oldest unacknowledged row on the new connection.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog

from gated.config import GatedConfig
from gated.state import Batch, EventType, Outbox, StateLoop, Store
from gated.uplink.connection import Connected, Connection, Hooks, RefusalKind, Topics
from gated.uplink.drain import Drain
from gated.uplink.rpc import Registry, Rpc
from gated.uplink.status import StatusFn, StatusPublisher, stopped_payload, will_payload

log = structlog.get_logger(__name__)

__all__ = ["Topics", "Uplink"]


class Uplink:
    def __init__(self, cfg: GatedConfig, store: Store, loop: StateLoop, outbox: Outbox,
                 commands: Registry | None, status_fn: StatusFn | None, lists: Any) -> None:
        self.cfg = cfg
        self.store = store
        self.loop = loop
        self.outbox = outbox
        self.commands = commands
        self.status_fn = status_fn
        self.lists = lists
        self._lock = threading.RLock()  # start, stop and reload, whoever calls them
        self.connection: Connection | None = None
        self.drain: Drain | None = None
        self.status: StatusPublisher | None = None
        self.rpc: Rpc | None = None
        self.refusals = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        with self._lock:
            if self.connection is not None:
                return  # already running: two clients with one client id would fight
            self._build(self.cfg)
            assert self.connection and self.drain and self.status and self.rpc
            self.loop.on_commit.append(self.drain.wake)
            self.rpc.start()
            self.status.start()
            self.connection.start(self.drain)
        log.info("uplink_started", host=self.cfg.mqtt.host, port=self.cfg.mqtt.port,
                 client_id=self.cfg.client_id, protocol=self.cfg.mqtt.protocol)

    def __enter__(self) -> Uplink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Publish offline (retained), disconnect cleanly (no will), stop every thread."""
        with self._lock:
            conn, drain = self.connection, self.drain
            if conn is None or drain is None:
                return
            if self.status is not None:
                self.status.stop()
            if conn.connected:
                info = conn.publish(conn.topics.status, stopped_payload(
                    self.cfg.site.id, self.cfg.booth.id, self.outbox.session.number,
                    conn.generation), qos=1, retain=True)
                if info is not None:
                    try:
                        info.wait_for_publish(timeout=2.0)
                    except (RuntimeError, ValueError) as e:
                        log.warning("offline_status_not_sent", error=str(e))
            conn.stop()  # the drain's last acks go to the state thread before it returns
            if self.rpc is not None:
                self.rpc.stop()
            if drain.wake in self.loop.on_commit:
                self.loop.on_commit.remove(drain.wake)
            self.connection = self.drain = None
            self.status = self.rpc = None
        log.info("uplink_stopped")

    def reload(self, new_cfg: GatedConfig) -> None:
        """New broker settings: reconnect. The outbox is untouched; nothing is discarded."""
        with self._lock:
            log.info("uplink_reload", host=new_cfg.mqtt.host, port=new_cfg.mqtt.port)
            self.stop()
            self.cfg = new_cfg
            self.start()

    def request_sync(self, kinds: list[str]) -> bool:
        """Publish a snapshot request per list; False (nothing sent) while disconnected."""
        conn, rpc = self.connection, self.rpc
        if conn is None or rpc is None or not conn.connected:
            return False
        for kind in kinds:
            rpc.request_snapshot(kind, "requested")
        return True

    def state(self) -> dict[str, Any]:
        conn, drain = self.connection, self.drain
        out: dict[str, Any] = {"connected": False, "last_error": None, "refused": None,
                               "refusals": self.refusals}
        if conn is not None:
            out.update(connected=conn.connected, last_error=conn.last_error,
                       refused=conn.refused, connects=conn.connects,
                       reconnect_attempt=conn.attempts, client_id=self.cfg.client_id,
                       broker=f"{self.cfg.mqtt.host}:{self.cfg.mqtt.port}",
                       protocol=self.cfg.mqtt.protocol)
        if drain is not None:
            out.update(drain.state())
        if self.rpc is not None:
            out.update(commands_handled=self.rpc.commands_handled,
                       lists_applied=self.rpc.sync_applied,
                       lists_rejected=self.rpc.sync_rejected)
        return out

    # ------------------------------------------------------------------ wiring
    def _build(self, cfg: GatedConfig) -> None:
        hooks = Hooks(connected=self._on_connected, disconnected=self._on_disconnected,
                      puback=self._on_puback, message=self._on_message,
                      refused=self._on_refused)
        session = self.outbox.session.number
        conn = Connection(cfg, hooks, lambda gen: will_payload(
            cfg.site.id, cfg.booth.id, session, gen, cfg.mqtt.keepalive_s))
        self.connection = conn
        self.drain = Drain(cfg.mqtt, conn.topics, conn, self.store.reader, self.loop, self.outbox)
        self.status = StatusPublisher(conn, self.status_fn, self.store.reader, self.loop,
                                      self.state, cfg.mqtt.status_interval_s,
                                      cfg.mqtt.metrics_interval_s,
                                      max_bytes=cfg.mqtt.max_message_bytes, session=session)
        self.rpc = Rpc(cfg.mqtt, conn, self.commands, self.lists, self.loop)

    # network-thread hooks: enqueue or post, never wait (the drain runs after each of them)
    def _on_connected(self, c: Connected) -> None:
        if self.drain is not None:
            self.drain.inbox.put(("connected", c))
        if self.status is not None:
            self.status.publish_now()
        m = self.cfg.mqtt

        def job(b: Batch) -> None:
            b.emit(EventType.UPLINK_CONNECTED, {"broker": f"{m.host}:{m.port}",
                                                "protocol": m.protocol,
                                                "session_present": c.session_present})
        self.loop.post(job)

    def _on_disconnected(self, generation: int, reason: str) -> None:
        if self.drain is not None:
            self.drain.inbox.put(("disconnected", generation))

    def _on_puback(self, generation: int, mid: int, rc: int) -> None:
        drain = self.drain
        if drain is not None:
            drain.inbox.put(("puback", generation, mid, rc))

    def _on_message(self, client: Any, msg: Any) -> None:
        if self.rpc is not None:
            self.rpc.on_message(client, msg)

    def _on_refused(self, kind: RefusalKind, detail: str, attempt: int) -> None:
        self.refusals += 1
        m = self.cfg.mqtt
        count = self.refusals

        def job(b: Batch) -> None:
            b.emit(EventType.UPLINK_REFUSED, {"reason": str(kind), "detail": detail[:200],
                                              "broker": f"{m.host}:{m.port}",
                                              "refusals": count})
        self.loop.post(job)
