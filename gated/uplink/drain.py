"""Draining the outbox at QoS 1: a bounded window, two lanes, a token bucket, no memory growth.

What a caller must know:
- A row is deleted (``Outbox.ack`` run on the state thread) only when its PUBACK arrives;
  reading or publishing it changes nothing. The delete rides along with the next commit the
  state thread makes anyway (``StateLoop.call_deferred``, within its tick at the latest),
  unless ``ACK_BATCH`` acked rows are waiting: then it is a commit of its own. Acked rows whose
  delete has not committed yet are remembered (``acked_pending``) so a reconnect in between
  does not send them again.
- On every successful CONNACK the backlog is replayed from the oldest row, in seq order. The
  rows present at that moment (seq <= ``mark``) form the replay lane, paced by a token bucket
  (``replay_rate``/``replay_burst``) so a county's booths coming back together do not flatten
  the broker; rows committed after it form the live lane, sent at once. While both have work,
  the replay lane keeps ``replay_share`` of the window. Each lane is in seq order; a live
  event sent ahead of an unfinished replay carries the MQTT 5 user property ``lane=live``
  (a retried one ``lane=retry``), so everything unmarked is in seq order.
- Memory holds at most the window plus one read chunk per lane, whatever the backlog.
- A refused message (MQTT 5 PUBACK reason >= 0x80, or larger than the broker's maximum packet
  size) is counted on its row, retried later out of line (it never blocks the head), and after
  ``max_attempts`` moved to ``dead_letter`` with an ``outbox.dead_letter`` alarm.

All of this runs on the MQTT network thread, between socket events (``Drain`` is the
``Connection``'s worker): messages from other threads go into ``Drain.inbox`` with a
``Connection.wake()``; paho's callbacks on the same thread only enqueue.
"""

from __future__ import annotations

import enum
import math
import queue
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gated.config import MqttConfig
from gated.state import Batch, EventType, Outbox, PendingRow, StateLoop, read_pending, read_row
from gated.uplink.connection import Connected, Connection, Topics

log = structlog.get_logger(__name__)

READ_CHUNK = 256
RETRY_BASE_S = 0.5
RETRY_MAX_S = 30.0
PACKET_OVERHEAD = 64  # fixed header, topic length, packet id, properties
#: Acked rows wait for their delete at most ``ACK_BATCH`` at a time (what a kill can send twice
#: at backlog rates: 64 rows, two windows); fewer ride along with the state thread's next
#: commit, made for an event anyway, or its tick: no commit (no fsync, no wake-up) of their
#: own at visitor rates. A crash in between sends those rows again; the centre drops them as
#: duplicates by id.
ACK_BATCH = 64
#: the longest the drain lets the network thread sleep: every commit, PUBACK and connection
#: change wakes it, and each timer it keeps (retry, replay rate) bounds the sleep; this only
#: bounds a wake that never came
IDLE_BACKSTOP_S = 5.0
#: after a read of the outbox failed (a locked or damaged file), the next try waits this long
STORAGE_RETRY_S = 1.0


def puback_reason(rc: int) -> str:
    """A refused PUBACK's code and the broker's meaning, as kept with a dead letter:
    ``puback:0x97 Quota exceeded``."""
    try:
        name = ReasonCode(PacketTypes.PUBACK, identifier=rc).getName()
    except (ValueError, KeyError):  # a code MQTT 5 does not define
        name = "unknown reason code"
    return f"puback:0x{rc:02x} {name}"


class Lane(enum.StrEnum):
    REPLAY = "replay"
    LIVE = "live"
    RETRY = "retry"


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``clock`` is injectable for tests."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.tokens = self.burst
        self.stamp = clock()

    def refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self) -> bool:
        self.refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def available(self) -> bool:
        self.refill()
        return self.tokens >= 1.0

    def wait_s(self) -> float:
        self.refill()
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def reset(self) -> None:
        self.tokens, self.stamp = self.burst, self.clock()


@dataclass
class DrainStats:
    published: int = 0
    acked: int = 0
    nacked: int = 0  # refusals of single messages (PUBACK >= 0x80, too large)
    dead_lettered: int = 0
    replays: int = 0
    replay_total: int = 0
    replay_sent: int = 0

    def snapshot(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Session:
    """Per-connection drain state; discarded whole on disconnect."""

    conn: Connected
    window: int
    mark: int
    max_packet: int | None
    replay_cursor: int = 0
    live_cursor: int = 0
    replay_done: bool = False
    live_dirty: bool = True
    inflight: dict[int, tuple[int, Lane]] = field(default_factory=dict)
    replay_buf: deque[PendingRow] = field(default_factory=deque)
    live_buf: deque[PendingRow] = field(default_factory=deque)
    lane_inflight: dict[Lane, int] = field(default_factory=lambda: dict.fromkeys(Lane, 0))

    @property
    def replaying(self) -> bool:
        return not self.replay_done or bool(self.replay_buf)


class Drain:
    """See the module docstring. ``inbox`` takes (kind, ...) tuples; ``open()``, ``step()``,
    ``timeout()`` and ``close()`` run on the network thread (``netloop.Worker``)."""

    def __init__(self, cfg: MqttConfig, topics: Topics, connection: Connection,
                 reader: Callable[[], sqlite3.Connection], loop: StateLoop, outbox: Outbox) -> None:
        self.cfg = cfg
        self.topics = topics
        self.connection = connection
        self._reader_factory = reader
        self.loop = loop
        self.outbox = outbox
        self.inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.bucket = TokenBucket(cfg.replay_rate, cfg.replay_burst)
        self.stats = DrainStats()
        self.session: _Session | None = None
        self.acked_pending: set[int] = set()
        self._ack_batch: list[int] = []
        #: seqs whose delete has committed, appended by the state thread without waking this
        #: one (they leave acked_pending at its next wake-up; a deleted row is never read)
        self._deleted: deque[list[int]] = deque()
        self._retry: dict[int, float] = {}  # seq -> monotonic due time
        self._wake_queued = False
        self._props: dict[Lane, Properties | None] = dict.fromkeys(Lane)
        if connection.is_v5:
            for lane in Lane:
                p = Properties(PacketTypes.PUBLISH)
                p.UserProperty = ("lane", str(lane))
                self._props[lane] = p
        self._db: sqlite3.Connection | None = None
        self._db_retry_at = 0.0
        self._connecting: Connected | None = None  # a CONNACK whose session is to start

    # ------------------------------------------------------------------ other threads
    def wake(self, _events: object = None) -> None:
        """``StateLoop.on_commit`` listener: new rows are there; at most one wake queued."""
        if not self._wake_queued:
            self._wake_queued = True
            self._post(("wake",))

    def _post(self, msg: tuple[Any, ...]) -> None:
        self.inbox.put(msg)
        self.connection.wake()

    def state(self) -> dict[str, Any]:
        s = self.session
        out: dict[str, Any] = {"inflight": 0, "acks_pending": len(self.acked_pending),
                               "retrying": len(self._retry), **self.stats.snapshot()}
        if s is not None:
            out.update(inflight=len(s.inflight), window=s.window, replay_mark=s.mark,
                       replay_cursor=s.replay_cursor, replaying=s.replaying)
        return out

    # ------------------------------------------------------------------ the network thread
    def open(self) -> None:
        self._db = self._reader_factory()

    def close(self) -> None:
        """The last acks' deletes are a commit of their own, now: the drain started next (a
        reload) replays from the oldest row, and finds them gone instead of sending them
        again until the state thread's next commit."""
        self._take_messages()
        self._flush_acks(force=True)
        if self._db is not None:
            self._db.close()
            self._db = None

    def step(self) -> None:
        self._take_messages()
        self._flush_acks()
        if time.monotonic() < self._db_retry_at:
            return
        try:
            if self._connecting is not None:
                self._start_session(self._connecting)
                self._connecting = None
            self._fill()
        except sqlite3.Error as e:  # a locked or damaged file: retry, never die silently
            log.error("drain_storage_error", error=str(e), retry_s=STORAGE_RETRY_S)
            self._db_retry_at = time.monotonic() + STORAGE_RETRY_S

    def _take_messages(self) -> None:
        try:
            while True:
                self._handle(self.inbox.get_nowait())
        except queue.Empty:
            pass
        while self._deleted:
            self.acked_pending.difference_update(self._deleted.popleft())

    def timeout(self) -> float:
        s = self.session
        t = IDLE_BACKSTOP_S
        if self._db_retry_at > time.monotonic():
            t = min(t, self._db_retry_at - time.monotonic())
        if s is None:
            return t  # "connected" arrives in the inbox with the CONNACK
        if s.replaying and len(s.inflight) < s.window:
            t = min(t, max(0.001, self.bucket.wait_s()))
        if self._retry:
            t = min(t, max(0.001, min(self._retry.values()) - time.monotonic()))
        return t

    def _handle(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        s = self.session
        if kind == "puback":
            _, gen, mid, rc = msg
            if s is None or gen != s.conn.generation or mid not in s.inflight:
                return
            seq, lane = s.inflight.pop(mid)
            s.lane_inflight[lane] -= 1
            if rc < 0x80:
                self.stats.acked += 1
                self.acked_pending.add(seq)
                self._ack_batch.append(seq)
            else:
                self._refuse(seq, puback_reason(rc))
        elif kind == "wake":
            self._wake_queued = False
            if s is not None:
                s.live_dirty = True
        elif kind == "connected":
            self._connecting = msg[1]  # the session starts in step(), where a read may fail
        elif kind == "disconnected":
            if self._connecting is not None and msg[1] == self._connecting.generation:
                self._connecting = None
            if s is not None and msg[1] == s.conn.generation:
                self.session = None
                self._retry.clear()
        elif kind == "refused_done":
            _, seq, dead, attempts = msg
            if dead:
                self.stats.dead_lettered += 1
            elif self.session is not None:
                delay = min(RETRY_MAX_S, RETRY_BASE_S * 2 ** max(1, attempts))
                self._retry[seq] = time.monotonic() + delay

    def _start_session(self, conn: Connected) -> None:
        assert self._db is not None
        mark = self._db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        total = self._db.execute("SELECT count(*) FROM events").fetchone()[0]
        window = self.cfg.max_inflight
        if conn.receive_maximum:
            window = min(window, max(1, conn.receive_maximum - 4))  # room for status/replies
        self.session = _Session(conn=conn, window=window, mark=int(mark),
                                max_packet=conn.maximum_packet_size, live_cursor=int(mark))
        self._retry.clear()
        self.bucket.reset()
        self.stats.replays += 1
        self.stats.replay_total = int(total)
        self.stats.replay_sent = 0
        log.info("drain_replay_start", backlog=total, mark=mark, window=window)

    # ------------------------------------------------------------------ sending
    def _fill(self) -> None:
        s = self.session
        if s is None:
            return
        while len(s.inflight) < s.window:
            if self._send_due_retry(s):
                continue
            replay_ok = s.replaying and self.bucket.available()
            reserved = math.ceil(s.window * self.cfg.replay_share) if replay_ok else 0
            live_room = s.lane_inflight[Lane.LIVE] < s.window - reserved
            row = self._next(s, Lane.LIVE) if live_room else None
            lane = Lane.LIVE
            if row is None and replay_ok:
                row, lane = self._next(s, Lane.REPLAY), Lane.REPLAY
            if row is None:
                return
            if lane is Lane.REPLAY:
                self.bucket.take()
            if not self._publish(s, row, lane):
                return

    def _next(self, s: _Session, lane: Lane) -> PendingRow | None:
        assert self._db is not None
        buf = s.replay_buf if lane is Lane.REPLAY else s.live_buf
        if not buf:
            if lane is Lane.REPLAY:
                if s.replay_done:
                    return None
                rows = read_pending(self._db, s.replay_cursor, READ_CHUNK)
                if rows:
                    s.replay_cursor = rows[-1].seq
                keep = [r for r in rows if r.seq <= s.mark]
                if len(keep) < len(rows) or not rows:
                    s.replay_done = True
                    s.replay_cursor = s.mark
                    log.info("drain_replay_done", sent=self.stats.replay_sent)
            else:
                if not s.live_dirty:
                    return None
                keep = read_pending(self._db, s.live_cursor, READ_CHUNK)
                if keep:
                    s.live_cursor = keep[-1].seq
                s.live_dirty = len(keep) == READ_CHUNK
            buf.extend(r for r in keep if r.seq not in self.acked_pending)
            if not buf:
                return None if lane is Lane.LIVE or s.replay_done else self._next(s, lane)
        return buf.popleft()

    def _publish(self, s: _Session, row: PendingRow, lane: Lane) -> bool:
        payload = row.body.encode()
        topic = self.topics.event(row.type)
        size = len(payload) + len(topic) + PACKET_OVERHEAD
        if size > self.cfg.max_message_bytes or (s.max_packet and size > s.max_packet):
            # Never send it: some brokers drop the connection over an oversized packet, and
            # mosquitto 2.0 answers with a PUBACK code paho 2.2 cannot parse (it disconnects);
            # either way the message would block the head forever.
            self._refuse(row.seq, "too_large", final=True)
            return True
        try:
            # Mark only what is out of seq order (live ahead of an unfinished replay, retries):
            # packing a property costs a fifth of the drain rate in paho.
            props = self._props[lane] if lane is Lane.RETRY or (
                lane is Lane.LIVE and s.replaying) else None
            info = s.conn.client.publish(topic, payload, qos=1, properties=props)
        except (ValueError, OSError) as e:  # payload beyond MQTT's own limit
            log.error("drain_publish_error", seq=row.seq, error=str(e))
            self._refuse(row.seq, "unpublishable", final=True)
            return True
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            # The connection went away under us; the disconnect message will follow.
            (s.replay_buf if lane is Lane.REPLAY else s.live_buf).appendleft(row)
            return False
        s.inflight[info.mid] = (row.seq, lane)
        s.lane_inflight[lane] += 1
        self.stats.published += 1
        if lane is Lane.REPLAY:
            self.stats.replay_sent += 1
        return True

    def _send_due_retry(self, s: _Session) -> bool:
        if not self._retry:
            return False
        now = time.monotonic()
        due = [seq for seq, t in self._retry.items() if t <= now]
        if not due:
            return False
        seq = min(due)
        del self._retry[seq]
        assert self._db is not None
        row = read_row(self._db, seq)
        if row is None:
            return True
        return self._publish(s, row, Lane.RETRY)

    # ------------------------------------------------------------------ state-thread jobs
    def _flush_acks(self, force: bool = False) -> None:
        """Hand the new acks' deletes to the state thread: deferred to its next commit, or a
        commit now (which takes every deferred delete with it) once ``ACK_BATCH`` rows wait,
        or when ``force``d with any delete still to commit."""
        now = (force and bool(self.acked_pending)) or len(self.acked_pending) >= ACK_BATCH
        if not self._ack_batch and not now:
            return
        seqs, self._ack_batch = self._ack_batch, []
        outbox = self.outbox
        post = self.loop.call if now else self.loop.call_deferred
        post(lambda b: outbox.ack(seqs)).add_done_callback(lambda f: self._deleted.append(seqs))

    def _refuse(self, seq: int, reason: str, *, final: bool = False) -> None:
        """Count a refusal on the row; the state thread moves it to dead_letter past the cap."""
        self.stats.nacked += 1
        outbox = self.outbox
        cap = 1 if final else self.cfg.max_attempts

        def job(b: Batch) -> tuple[bool, int]:
            dead, attempts = outbox.refused(seq, reason, cap)
            log.warning("drain_refused", seq=seq, reason=reason, attempt=attempts, dead=dead)
            if dead:
                b.emit(EventType.OUTBOX_DEAD_LETTER, {"seq": seq, "reason": reason,
                                                      "attempts": cap})
            return dead, attempts

        def done(f: Any) -> None:
            dead, attempts = f.result() if f.exception() is None else (False, 1)
            self._post(("refused_done", seq, dead, attempts))
        self.loop.call(job).add_done_callback(done)
