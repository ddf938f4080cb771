"""``gated centre ingest``: one worker of the county's reference ingest.

Every worker of one ingest subscribes to ``$share/<group>/gated/v1/+/+/events/#`` (MQTT 5
shared subscription: the broker gives each message to one worker of the group, so N workers
on N machines split the load) and, without sharing, to every booth's retained ``status``.

What a caller (and an operator) must know:
- Acknowledged only after the commit. paho runs with ``manual_ack=True``: a message's PUBACK
  is sent by this worker's loop after the transaction that stored (or quarantined) it
  committed, in the order the messages arrived. A worker killed at any point loses nothing:
  the broker still holds every unacknowledged message in the worker's session and sends it
  again when the worker comes back (the database drops what it already has as a duplicate).
- The session is persistent (``clean_start=False``, ``session_expiry_s``) and the client id
  is ``gated-centre-<name>``: restart a worker under the same ``--name``. With mosquitto, a
  stopped worker's session keeps receiving its share of messages until it expires; they wait
  there for it (see the README's topology section).
- Memory is bounded by the MQTT 5 Receive Maximum (``ingest.receive_maximum``): the broker
  sends no more unacknowledged messages than that.
- A connection's messages are acknowledged only on that connection (``gen``): after a
  reconnect, the broker resends what was not acknowledged, and the database dedups it.
- PostgreSQL unreachable: the batch is kept and written again with capped backoff; nothing is
  acknowledged meanwhile, so the broker holds the backlog.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gated.centre.config import CentreConfig
from gated.centre.schema import migrate
from gated.centre.writer import BatchResult, Message, Writer

log = structlog.get_logger(__name__)

STATS_EVERY_S = 60.0
PG_RETRY_MIN_S = 0.2
PG_RETRY_MAX_S = 10.0


def event_filter(group: str) -> str:
    return f"$share/{group}/gated/v1/+/+/events/#"


STATUS_FILTER = "gated/v1/+/+/status"


def mqtt_client(cfg: CentreConfig, client_id: str, *, manual_ack: bool) -> mqtt.Client:
    """A paho MQTT 5 client with the centre's credentials and TLS (the desk uses one too)."""
    m = cfg.mqtt
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv5,
                         manual_ack=manual_ack)
    if m.username:
        password = (m.password_file.read_text(encoding="utf-8").strip()
                    if m.password_file else None)
        client.username_pw_set(m.username, password)
    if m.ca_file:
        client.tls_set(ca_certs=str(m.ca_file),
                       certfile=str(m.cert_file) if m.cert_file else None,
                       keyfile=str(m.key_file) if m.key_file else None)
    # Back within a fraction of a second of a broker restart, ahead of the booths (whose first
    # retry waits reconnect_min_s, 0.5-1 s by default): mosquitto 2.0 does not restore shared
    # subscriptions from its persistence file, so until a worker subscribes again the broker
    # answers the booths' events "no matching subscribers" (PUBACK 0x10) and drops them.
    # paho's annotation says int; it takes seconds as a float.
    client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
    return client


@dataclass
class IngestStats(BatchResult):
    """A worker's totals: every batch's result, and what the worker itself counts."""

    batches: int = 0
    acked: int = 0
    connects: int = 0
    pg_errors: int = 0
    sequenced: int = 0

    def add(self, r: BatchResult) -> None:
        super().add(r)
        self.batches += 1

    def snapshot(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k != "quarantined"},
                "quarantined": dict(self.quarantined)}


class IngestWorker:
    """One worker; ``run`` blocks until ``stop`` is set (SIGTERM in the CLI)."""

    def __init__(self, cfg: CentreConfig, name: str) -> None:
        self.cfg = cfg
        self.name = name
        self.client_id = f"gated-centre-{name}"
        self.stats = IngestStats()
        self.inbox: queue.Queue[Message] = queue.Queue()
        self.stop = threading.Event()
        self.connected = threading.Event()
        self._gen = 0
        self._lock = threading.Lock()
        self._client: mqtt.Client | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._writer: Writer | None = None

    # ------------------------------------------------------------------ MQTT (paho thread)
    def _on_connect(self, c: mqtt.Client, u: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            log.error("ingest_mqtt_refused", reason=str(rc))
            return
        with self._lock:
            self._gen += 1
        self.stats.connects += 1
        c.subscribe([(event_filter(self.cfg.mqtt.group), 1), (STATUS_FILTER, 1)])
        log.info("ingest_mqtt_connected", session_present=bool(flags.session_present),
                 group=self.cfg.mqtt.group)
        self.connected.set()

    def _on_disconnect(self, c: mqtt.Client, u: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connected.clear()
        if not self.stop.is_set():
            log.warning("ingest_mqtt_disconnected", reason=str(rc))

    def _on_message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            gen = self._gen
        self.inbox.put(Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, gen))

    def _start_mqtt(self) -> None:
        m = self.cfg.mqtt
        client = mqtt_client(self.cfg, self.client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = m.session_expiry_s
        props.ReceiveMaximum = self.cfg.ingest.receive_maximum
        client.connect_async(m.host, m.port, m.keepalive_s, clean_start=False, properties=props)
        client.loop_start()
        self._client = client

    # ------------------------------------------------------------------ PostgreSQL
    def _writer_ready(self) -> Writer:
        """The writer on a live connection, connecting (and migrating) with capped backoff."""
        delay = PG_RETRY_MIN_S
        while self._writer is None or self._conn is None or self._conn.closed:
            try:
                conn = psycopg.connect(self.cfg.conninfo(), autocommit=True,
                                       application_name=self.client_id[:63])
                migrate(conn, timezone=self.cfg.timezone)
            except psycopg.Error as e:
                self.stats.pg_errors += 1
                log.error("ingest_pg_unavailable", error=str(e).strip()[:300], retry_s=delay)
                if self.stop.wait(delay):
                    raise _Stopped() from None
                delay = min(PG_RETRY_MAX_S, delay * 2)
                continue
            self._conn = conn
            self._writer = Writer(conn, worker=self.name,
                                  max_bytes=self.cfg.ingest.max_message_bytes,
                                  sites=frozenset(self.cfg.ingest.sites))
        return self._writer

    def _drop_pg(self) -> None:
        conn, self._conn, self._writer = self._conn, None, None
        if conn is not None:
            conn.close()

    def _write(self, batch: list[Message]) -> BatchResult:
        """Write until it is committed; only a stop request gives up (nothing is acked)."""
        delay = PG_RETRY_MIN_S
        while True:
            writer = self._writer_ready()
            try:
                return writer.write(batch)
            except psycopg.Error as e:
                # the connection or the server, a deadlock with another worker (both
                # OperationalError), or a schema someone changed: kept, and tried again
                self.stats.pg_errors += 1
                log.warning("ingest_batch_failed", error=str(e).strip()[:300],
                            messages=len(batch), retry_s=delay)
                if self._conn is not None and self._conn.broken:
                    self._drop_pg()
                if self.stop.wait(delay):
                    raise _Stopped() from None
                delay = min(PG_RETRY_MAX_S, delay * 2)

    # ------------------------------------------------------------------ the loop
    def _collect(self, first_wait: float) -> list[Message]:
        try:
            batch = [self.inbox.get(timeout=first_wait)]
        except queue.Empty:
            return []
        limit = self.cfg.ingest.batch_max
        deadline = time.monotonic() + self.cfg.ingest.batch_wait_ms / 1000
        while len(batch) < limit:
            try:
                batch.append(self.inbox.get_nowait())
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(self.inbox.get(timeout=left))
                except queue.Empty:
                    break
        return batch

    def _ack(self, batch: list[Message]) -> None:
        client = self._client
        with self._lock:
            gen = self._gen
        if client is None:
            return
        for m in batch:
            if m.qos > 0 and m.gen == gen:
                client.ack(m.mid, m.qos)
                self.stats.acked += 1

    def _sequence(self) -> None:
        try:
            writer = self._writer_ready()
            while True:
                n = writer.sequence()
                self.stats.sequenced += n
                if n < 50_000:
                    return
        except psycopg.Error as e:  # the pending rows stay; the next pass takes them
            self.stats.pg_errors += 1
            log.warning("ingest_sequence_failed", error=str(e).strip()[:300])
            if self._conn is not None and self._conn.broken:
                self._drop_pg()

    def run(self) -> None:
        """Connect to PostgreSQL first (so the schema exists), then to the broker; write
        batches until ``stop``; then disconnect cleanly."""
        try:
            self._writer_ready()
        except _Stopped:
            return
        self._start_mqtt()
        log.info("ingest_started", worker=self.name, client_id=self.client_id,
                 batch_max=self.cfg.ingest.batch_max)
        next_seq = next_stats = time.monotonic()
        interval = self.cfg.ingest.sequence_interval_s
        try:
            while not self.stop.is_set():
                batch = self._collect(min(0.2, interval))
                if batch:
                    result = self._write(batch)
                    self._ack(batch)
                    self.stats.add(result)
                now = time.monotonic()
                if now >= next_seq:
                    self._sequence()
                    next_seq = now + interval
                if now >= next_stats:
                    log.info("ingest_stats", **self.stats.snapshot())
                    next_stats = now + STATS_EVERY_S
        except _Stopped:
            pass
        finally:
            if self._writer is not None:
                self._sequence()  # what this worker stored, folded in before it goes
            self.close()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self._drop_pg()
        log.info("ingest_stopped", worker=self.name, **self.stats.snapshot())


class _Stopped(Exception):
    """Raised inside the loop when ``stop`` was set while waiting for PostgreSQL."""
