"""One batch of MQTT messages into PostgreSQL in one transaction: stored once, or quarantined.

What a caller must know:
- ``write`` runs one transaction and returns what it did; the caller acknowledges the batch's
  messages only after it returned (the commit is done then). It raises ``psycopg.Error`` only
  for the connection, the server or the schema (``OperationalError``, ``ProgrammingError``:
  write the same batch again later); anything the data itself causes is quarantined, never
  raised, so one bad message can never hold the queue.
- Exactly once: events are inserted with ``ON CONFLICT DO NOTHING`` under the two unique
  keys (site, booth, seq) and (id). A message already stored with the same id and seq is a
  duplicate (a redelivery, or the booth sending again after a lost PUBACK): counted, not
  stored. The same seq under a new id, or the same id under another seq or booth, is
  quarantined (``seq_reused``, ``id_reused``); the first one stored stays.
- Rows are inserted sorted by (site, booth, seq), so two workers writing overlapping batches
  take their locks in one order; a deadlock PostgreSQL still reports is raised like any
  ``OperationalError`` and the batch is written again.
- Each stored event's seq goes to ``seq_pending``; ``sequence`` folds those into
  ``booth_seq`` in a short transaction of its own (see ``gated.centre.schema``).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from psycopg.types.json import Json

from gated.centre.envelope import SITE_WIDE, SLUG, Accepted, Reason, Refusal, parse
from gated.wire import PayloadError, loads_object

log = structlog.get_logger(__name__)

MAX_RANGES = 10_000  # explained ranges taken from one event
DETAIL_MAX = 500
_SEQUENCE_LOCK = 0x67617465647371  # one sequencer at a time; the others skip their turn


@dataclass(frozen=True, slots=True)
class Message:
    """One message as the MQTT thread received it; ``gen`` is its connection's number."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    gen: int


@dataclass(frozen=True, slots=True)
class Quarantined:
    topic: str
    reason: Reason
    detail: str
    payload: bytes
    event_id: str | None = None
    seq: int | None = None


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    statuses: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)

    def add(self, r: BatchResult) -> None:
        """Count ``r`` in too (a batch written message by message; a worker's totals)."""
        self.stored += r.stored
        self.duplicates += r.duplicates
        self.statuses += r.statuses
        self.quarantined.update(r.quarantined)


def _topic_booth(topic: str) -> tuple[str | None, str | None]:
    parts = topic.split("/")
    return (parts[2][:64], parts[3][:64]) if len(parts) >= 4 else (None, None)


def _clean(text: str) -> str:
    """Text PostgreSQL takes: no NUL, no lone surrogate."""
    return text.replace("\x00", "?").encode("utf-8", "replace").decode()[:DETAIL_MAX]


#: Events whose ``ranges`` ([[first, last], ...], inclusive) name seqs the booth will never
#: send: evicted when its outbox was full, purged after ``retention_days``, lost with a damaged
#: database, or reserved and never used before the database was lost or rebuilt.
RANGE_EVENTS = frozenset({"outbox.evicted", "outbox.purged", "outbox.corrupted",
                          "outbox.skipped"})


def _seq_ok(v: Any, below: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v < below


def explained_ranges(ev: Accepted) -> list[tuple[int, int]]:
    """Seqs an event says the centre will never get, as inclusive (lo, hi) ranges below the
    event's own seq: the ``ranges`` of ``RANGE_EVENTS``; ``outbox.corrupted``'s
    ``seq_gap_from`` .. ``seq_resumed_at`` - 1 (booths before ``ranges``);
    ``outbox.dead_letter``'s ``seq`` (refused by the broker, kept at the booth: ``gated outbox
    dead``). Anything malformed is ignored: that gap then stays unexplained, the honest
    reading."""
    out: list[tuple[int, int]] = []
    ranges = ev.data.get("ranges")
    if ev.type in RANGE_EVENTS and isinstance(ranges, list):
        for r in ranges[:MAX_RANGES]:
            if (isinstance(r, list) and len(r) == 2 and _seq_ok(r[0], ev.seq)
                    and _seq_ok(r[1], ev.seq) and r[0] <= r[1]):
                out.append((r[0], r[1]))
    elif ev.type == "outbox.corrupted":
        lo, hi = ev.data.get("seq_gap_from"), ev.data.get("seq_resumed_at")
        if isinstance(lo, int) and isinstance(hi, int) and _seq_ok(lo, hi) \
                and _seq_ok(hi, ev.seq + 1):
            out.append((lo, hi - 1))
    elif ev.type == "outbox.dead_letter" and _seq_ok(ev.data.get("seq"), ev.seq):
        out.append((ev.data["seq"], ev.data["seq"]))
    return out


def seq_runs(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted seqs -> inclusive runs: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for s in seqs:
        if runs and s == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    return runs


class Writer:
    """Writes batches on one psycopg connection (autocommit off is not needed: each call
    opens its own transaction). ``worker`` names this ingest in quarantine rows."""

    def __init__(self, conn: psycopg.Connection[Any], *, worker: str, max_bytes: int,
                 sites: frozenset[str] = frozenset()) -> None:
        self.conn = conn
        self.worker = worker
        self.max_bytes = max_bytes
        self.sites = sites

    # ------------------------------------------------------------------ batches
    def write(self, messages: list[Message]) -> BatchResult:
        try:
            return self._write(messages)
        except (psycopg.DataError, psycopg.IntegrityError) as e:
            # Something in the batch that the checks let through and PostgreSQL refuses: find
            # it by writing each message alone; the one that still fails is quarantined. (A
            # ProgrammingError, a missing table say, is no message's fault: it is raised, and
            # the worker holds the batch until the schema is back.)
            log.warning("ingest_batch_refused", error=str(e)[:200], messages=len(messages))
            total = BatchResult()
            for m in messages:
                try:
                    one = self._write([m])
                except (psycopg.DataError, psycopg.IntegrityError) as e1:
                    one = self._write([], [Quarantined(m.topic, Reason.REFUSED_BY_DATABASE,
                                                       _clean(str(e1)), m.payload)])
                total.add(one)
            return total

    def _write(self, messages: list[Message],
               refused: list[Quarantined] | None = None) -> BatchResult:
        result = BatchResult()
        bad: list[Quarantined] = list(refused or [])
        statuses: list[tuple[str, str, dict[str, Any]]] = []
        by_id: dict[str, Accepted] = {}
        raw: dict[str, Message] = {}
        by_key: dict[tuple[str, str, int], str] = {}
        for m in messages:
            if m.topic.endswith("/status"):
                status = self._status(m, bad)
                if status is not None:
                    statuses.append(status)
                continue
            try:
                ev = parse(m.topic, m.payload, max_bytes=self.max_bytes, sites=self.sites)
            except Refusal as r:
                bad.append(Quarantined(m.topic, r.reason, _clean(r.detail), m.payload))
                continue
            key = (ev.site, ev.booth, ev.seq)
            held = by_id.get(ev.id)
            if held is not None:
                if (held.site, held.booth, held.seq) == key:
                    result.duplicates += 1
                else:
                    bad.append(_reused(m, ev, Reason.ID_REUSED, f"id already seq {held.seq}"))
                continue
            if key in by_key:
                bad.append(_reused(m, ev, Reason.SEQ_REUSED, f"seq taken by {by_key[key]}"))
                continue
            by_id[ev.id], by_key[key], raw[ev.id] = ev, ev.id, m
        events = sorted(by_id.values(), key=lambda e: (e.site, e.booth, e.seq))
        with self.conn.transaction():
            inserted = self._insert(events)
            result.stored = len(inserted)
            missed = [ev for ev in events if ev.id not in inserted]
            if missed:
                dups, reused = self._conflicts(missed)
                result.duplicates += dups
                bad += [_reused(raw[ev.id], ev, reason, detail) for ev, reason, detail in reused]
            self._pending([ev for ev in events if ev.id in inserted])
            if statuses:
                self._statuses(statuses)
                result.statuses = len(statuses)
            if bad:
                self._quarantine(bad)
        result.quarantined.update(str(q.reason) for q in bad)
        return result

    def _insert(self, events: list[Accepted]) -> set[str]:
        if not events:
            return set()
        cols = list(zip(*[(e.site, e.booth, e.seq, e.id, e.type, e.ts, e.clock_ok, e.session,
                           e.schema, e.priority, e.data_json) for e in events], strict=True))
        cur = self.conn.execute(
            "INSERT INTO events (site, booth, seq, id, type, ts, clock_ok, session, schema, "
            "priority, data) SELECT s, b, q, i, t, ts, c, se, sc, p, d::jsonb FROM unnest("
            "%b::text[], %b::text[], %b::bigint[], %b::text[], %b::text[], %b::timestamptz[], "
            "%b::boolean[], %b::bigint[], %b::int[], %b::text[], %b::text[]) "
            "AS u(s, b, q, i, t, ts, c, se, sc, p, d) ON CONFLICT DO NOTHING RETURNING id",
            [list(c) for c in cols])  # %b: binary arrays, no per-element text escaping
        return {r[0] for r in cur.fetchall()}

    def _conflicts(self, missed: list[Accepted]
                   ) -> tuple[int, list[tuple[Accepted, Reason, str]]]:
        """Why rows were not inserted: the same event again, or a reuse (quarantined)."""
        rows = self.conn.execute(
            "SELECT e.id, e.site, e.booth, e.seq FROM events e WHERE e.id = ANY(%s) UNION "
            "SELECT e.id, e.site, e.booth, e.seq FROM events e JOIN unnest(%s::text[], "
            "%s::text[], %s::bigint[]) AS k(site, booth, seq) USING (site, booth, seq)",
            ([e.id for e in missed], [e.site for e in missed], [e.booth for e in missed],
             [e.seq for e in missed])).fetchall()
        by_id = {r[0]: (r[1], r[2], r[3]) for r in rows}
        by_key = {(r[1], r[2], r[3]): r[0] for r in rows}
        dups = 0
        reused: list[tuple[Accepted, Reason, str]] = []
        for ev in missed:
            key = (ev.site, ev.booth, ev.seq)
            if by_id.get(ev.id) == key:
                dups += 1
            elif ev.id in by_id:
                s, b, q = by_id[ev.id]
                reused.append((ev, Reason.ID_REUSED, f"id stored as {s}/{b} seq {q}"))
            else:
                reused.append((ev, Reason.SEQ_REUSED,
                               f"seq stored under id {by_key.get(key, '?')}"))
        return dups, reused

    def _pending(self, stored: list[Accepted]) -> None:
        rows: list[tuple[str, str, int, int, bool]] = []
        for (site, booth), group in itertools.groupby(stored, key=lambda e: (e.site, e.booth)):
            evs = list(group)
            rows += [(site, booth, lo, hi, False) for lo, hi in seq_runs([e.seq for e in evs])]
            rows += [(site, booth, lo, hi, True) for e in evs for lo, hi in explained_ranges(e)]
        if rows:
            cols = [list(c) for c in zip(*rows, strict=True)]
            self.conn.execute(
                "INSERT INTO seq_pending (site, booth, lo, hi, explained) SELECT * FROM unnest("
                "%b::text[], %b::text[], %b::bigint[], %b::bigint[], %b::boolean[])", cols)

    def _quarantine(self, bad: list[Quarantined]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO quarantine (topic, site, booth, reason, detail, event_id, seq, "
                "payload, worker) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(_clean(q.topic), *_topic_booth(_clean(q.topic)), str(q.reason), q.detail,
                  q.event_id, q.seq, q.payload, self.worker) for q in bad])
        # One line per reason and batch, not per message: a rogue booth must not flood the log.
        for reason, group in itertools.groupby(sorted(bad, key=lambda q: q.reason),
                                               key=lambda q: q.reason):
            first = list(group)
            site, booth = _topic_booth(first[0].topic)
            log.warning("ingest_quarantined", reason=str(reason), messages=len(first),
                        site=site, booth=booth, detail=first[0].detail[:120])

    # ------------------------------------------------------------------ status
    def _status(self, m: Message, bad: list[Quarantined]) -> tuple[str, str, dict[str, Any]] | None:
        parts = m.topic.split("/")
        if (len(parts) != 5 or parts[:2] != ["gated", "v1"] or parts[4] != "status"
                or parts[3] == SITE_WIDE or not (SLUG.match(parts[2]) and SLUG.match(parts[3]))):
            bad.append(Quarantined(m.topic, Reason.BAD_TOPIC, "not a booth status", m.payload))
            return None
        if len(m.payload) > self.max_bytes:
            bad.append(Quarantined(m.topic, Reason.TOO_LARGE, f"{len(m.payload)} bytes",
                                   m.payload))
            return None
        if not m.payload:
            return None  # a retained status cleared on purpose
        try:
            body = loads_object(m.payload)
        except PayloadError as e:
            bad.append(Quarantined(m.topic, Reason.MALFORMED_JSON, _clean(str(e)), m.payload))
            return None
        if b"\\u0000" in m.payload:
            bad.append(Quarantined(m.topic, Reason.MALFORMED_JSON, "holds \\u0000", m.payload))
            return None
        return parts[2], parts[3], body

    def _statuses(self, statuses: list[tuple[str, str, dict[str, Any]]]) -> None:
        now = datetime.now(UTC)
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO booth_status AS o (site, booth, online, state, reason, version, "
                "status_ts, received_at, online_since, body, session) VALUES (%s, %s, %s, %s, "
                "%s, %s, %s, %s, %s, %s::jsonb, %s) ON CONFLICT (site, booth) DO UPDATE SET "
                "online = EXCLUDED.online, state = EXCLUDED.state, reason = EXCLUDED.reason, "
                "version = EXCLUDED.version, status_ts = EXCLUDED.status_ts, "
                "received_at = EXCLUDED.received_at, body = EXCLUDED.body, "
                "session = coalesce(EXCLUDED.session, o.session), online_since = "
                "CASE WHEN o.online = EXCLUDED.online THEN o.online_since "
                "ELSE EXCLUDED.received_at END "
                # a will or status of an earlier run of the booth, arriving late, changes nothing
                "WHERE EXCLUDED.session IS NULL OR o.session IS NULL "
                "OR EXCLUDED.session >= o.session",
                [(site, booth, body.get("online") is True,
                  str(body.get("state") or ("online" if body.get("online") else "offline"))[:32],
                  _opt(body.get("reason")), _opt(body.get("version")), _opt(body.get("ts")),
                  now, now, Json(body), _session(body.get("session")))
                 for site, booth, body in statuses])

    # ------------------------------------------------------------------ sequencer
    def sequence(self, limit: int = 50_000) -> int:
        """Fold up to ``limit`` pending seq rows into ``booth_seq``; returns how many. Skips
        (returns 0) while another worker holds the sequencer's lock."""
        with self.conn.transaction():
            got = self.conn.execute("SELECT pg_try_advisory_xact_lock(%s)",
                                    (_SEQUENCE_LOCK,)).fetchone()
            if not got or not got[0]:
                return 0
            cur = self.conn.execute(
                "WITH taken AS (DELETE FROM seq_pending WHERE pid IN (SELECT pid FROM "
                "seq_pending ORDER BY pid LIMIT %s) RETURNING site, booth, lo, hi, explained), "
                "agg AS (SELECT site, booth, "
                "coalesce(range_agg(int8range(lo, hi + 1)) FILTER (WHERE NOT explained), '{}') "
                "AS got, coalesce(range_agg(int8range(lo, hi + 1)) FILTER (WHERE explained), "
                "'{}') AS why, coalesce(max(hi) FILTER (WHERE NOT explained), 0) AS top, "
                "count(*) AS n FROM taken GROUP BY site, booth ORDER BY site, booth), "
                "up AS (INSERT INTO booth_seq AS b (site, booth, present, explained, max_seq) "
                "SELECT site, booth, got, why, top FROM agg ON CONFLICT (site, booth) DO UPDATE "
                "SET present = b.present + EXCLUDED.present, "
                "explained = b.explained + EXCLUDED.explained, "
                "max_seq = greatest(b.max_seq, EXCLUDED.max_seq), updated_at = now()) "
                "SELECT coalesce(sum(n), 0) FROM agg", (limit,))
            row = cur.fetchone()
            return int(row[0]) if row else 0


def _session(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**53 else None


def _opt(v: Any) -> str | None:
    return None if v is None else _clean(str(v))[:200]


def _reused(m: Message, ev: Accepted, reason: Reason, detail: str) -> Quarantined:
    return Quarantined(m.topic, reason, detail, m.payload, ev.id, ev.seq)
