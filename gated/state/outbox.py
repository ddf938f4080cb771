"""Store-and-forward of events: the only way anything leaves the booth.

Rules a caller must know:
- ``append`` runs inside ``Store.transaction()`` on the state thread; the event is durable when
  that transaction commits, and its effect (gate, printer) may happen only after that.
- ``seq`` is per booth and never reused, not even after a crash or a damaged database: blocks of
  numbers are reserved in ``seq.hwm`` (fsync'ed) before use, and a recovered store restarts
  above the reservation, leaving a visible gap rather than a duplicate. Numbers handed out in
  a transaction that rolled back (a job failed, the disk was full) were never stored nor
  published: they are handed out again, so a rollback leaves no gap.
- Appended rows are written to SQLite in one multi-row INSERT just before the commit
  (``flush``), not one statement per event: every statement lets go of the GIL, and with a
  dozen device threads waiting for it each let-go cost the state thread tens of microseconds.
  Every other outbox method writes the waiting rows first; raw SQL on ``events`` inside the
  same transaction must call ``write_rows()`` first (nothing in gated does; the test rigs do).
- The store is bounded by rows and bytes. When full it evicts the lowest priority first and,
  within one priority, the lowest ``seq`` (never by wall clock). A share of the bound is kept
  for ALARM events, which only ever evict other alarms. Delivered rows are deleted at once.
  Every evicted (or burnt) number is collected as a range for the ``outbox.evicted`` report
  (``take_eviction_reports``), so the centre knows exactly which ``seq`` will never come.
- ``session`` is this start's number (``gated.state.session``): it is claimed when the outbox
  opens and stamped into every envelope, beside ``site`` and ``booth``.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from gated.config import OutboxConfig
from gated.state import ranges as seq_ranges
from gated.state import session as booth_session
from gated.state.durable import replace_durably
from gated.state.events import Event, EventPriority
from gated.state.store import StorageFull, Store

log = structlog.get_logger(__name__)

SEQ_BLOCK = 10_000
_INSERT_MAX_ROWS = 128  # 7 parameters a row: under SQLite's oldest 999-parameter limit
_Row = tuple[int, str, str, int, str, int, str]
HWM_NAME = "seq.hwm"


def ensure_schema(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE IF NOT EXISTS [events] (
        [seq] INTEGER PRIMARY KEY, [id] TEXT NOT NULL, [type] TEXT NOT NULL,
        [priority] INTEGER NOT NULL, [ts] TEXT, [size] INTEGER, [body] TEXT NOT NULL,
        [attempts] INTEGER DEFAULT 0)""")
    db.execute("CREATE INDEX IF NOT EXISTS [idx_events_priority_seq] ON [events] "
               "([priority], [seq])")
    db.execute("""CREATE TABLE IF NOT EXISTS [dead_letter] (
        [seq] INTEGER PRIMARY KEY, [id] TEXT, [type] TEXT, [body] TEXT, [reason] TEXT,
        [ts] TEXT)""")
    db.execute("CREATE TABLE IF NOT EXISTS [meta] ([key] TEXT PRIMARY KEY, [value] INTEGER)")


@dataclass(frozen=True)
class OutboxStats:
    depth: int
    bytes: int
    oldest_seq: int | None
    oldest_ts: str | None
    last_seq: int
    evicted_total: int
    dead_letters: int
    by_priority: dict[str, int]


@dataclass(frozen=True)
class PendingRow:
    seq: int
    id: str
    type: str
    priority: int
    body: str
    attempts: int


class Outbox:
    ensure_schema = staticmethod(ensure_schema)

    def __init__(self, store: Store, cfg: OutboxConfig, site: str, booth: str) -> None:
        """``store`` must be open; the outbox persists its seq at each of its commits."""
        conn = store.conn
        recovered = store.recovery is not None
        state_dir = store.state_dir
        store.before_commit.append(self.flush)
        store.after_commit.append(self._committed)
        self._conn = conn
        self._rows: list[_Row] = []  # appended in this transaction, not yet INSERTed
        self._meta_seq = 0
        self.cfg = cfg
        self.site = site
        self.booth = booth
        self._hwm_path = Path(state_dir) / HWM_NAME
        self._hwm = _read_hwm(self._hwm_path)
        meta_seq = self._meta_seq = self._meta("last_seq")
        max_row = conn.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
        self.last_seq = max(meta_seq, max_row)
        self.seq_gap_from: int | None = None
        ran_before = self._hwm > 0 or self.last_seq > 0
        if recovered or (self.last_seq == 0 and self._hwm > 0):
            # The database was lost or rebuilt: numbers up to the reservation may be in use.
            self.last_seq = max(self.last_seq, self._hwm)
            self.seq_gap_from = meta_seq
        self._skipped = ([[self.seq_gap_from + 1, self.last_seq]]
                         if self.seq_gap_from is not None and self.last_seq > self.seq_gap_from
                         else [])
        self.resumed_at = self.last_seq + 1  # the first number this start hands out
        self.session = booth_session.claim(Path(state_dir), conn, ran_before=ran_before)
        self._durable_seq = self.last_seq  # numbers up to here are used or reserved
        row = conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM events").fetchone()
        self.depth, self.bytes = int(row[0]), int(row[1])
        self.evicted_total = self._meta("evicted_total")
        self.pending_evictions: Counter[str] = Counter()
        self.pending_evicted_seqs = seq_ranges.SeqRanges()
        rows_for_alarms = int(cfg.max_rows * cfg.reserved_fraction)
        self._limit_rows = {True: cfg.max_rows, False: cfg.max_rows - rows_for_alarms}
        bytes_for_alarms = int(cfg.max_bytes * cfg.reserved_fraction)
        self._limit_bytes = {True: cfg.max_bytes, False: cfg.max_bytes - bytes_for_alarms}

    # ------------------------------------------------------------------ writing
    def append(self, event: Event) -> Event:
        """Give ``event`` its seq and store it; call inside the open transaction.

        The outbox takes the event over: its ``seq`` is stamped in place (``event`` must be a
        new one from ``Event.make``, its seq 0), which spares building a second event for every
        append on the state thread's hot path. Returns the same event.
        """
        if event.seq:
            raise ValueError(f"event {event.id} already has seq {event.seq}")
        seq = self.last_seq + 1
        if seq > self._hwm:
            try:
                _write_hwm(self._hwm_path, seq + SEQ_BLOCK)
            except OSError as e:
                raise StorageFull(f"cannot reserve sequence numbers in {self._hwm_path}: "
                                  f"{e.strerror}") from e
            self._hwm = seq + SEQ_BLOCK
        object.__setattr__(event, "seq", seq)  # frozen for everyone after this point
        raw = event.to_json_bytes(self.site, self.booth, self.session.number)
        size, body = len(raw), raw.decode()
        if not self._make_room(event.priority, size):
            self.pending_evictions[str(event.type)] += 1
            self.pending_evicted_seqs.add(seq)
            self._count_evicted(1)
            self.last_seq = seq  # the number is burnt: central sees the gap, never a reuse
            return event
        self._rows.append((seq, event.id, str(event.type), int(event.priority), event.ts, size,
                           body))
        self.last_seq = seq
        self.depth += 1
        self.bytes += size
        return event

    def _committed(self) -> None:
        self._durable_seq = self.last_seq

    def flush(self) -> None:
        """Write the appended rows and ``last_seq`` in the open transaction (once per commit)."""
        self.write_rows()
        if self.last_seq != self._meta_seq:
            self._set_meta("last_seq", self.last_seq)
            self._meta_seq = self.last_seq

    def write_rows(self) -> None:
        """INSERT the rows appended since the last write, in the open transaction. Chunks are
        powers of two, so at most eight distinct statements reach the statement cache."""
        rows, self._rows = self._rows, []
        while rows:
            k = min(_INSERT_MAX_ROWS, 1 << (len(rows).bit_length() - 1))
            chunk, rows = rows[:k], rows[k:]
            self._conn.execute(_insert_sql(k), [v for row in chunk for v in row])

    def _make_room(self, priority: EventPriority, size: int) -> bool:
        is_alarm = priority >= EventPriority.ALARM
        max_rows, max_bytes = self._limit_rows[is_alarm], self._limit_bytes[is_alarm]
        if size > max_bytes:
            return False
        while self.depth + 1 > max_rows or self.bytes + size > max_bytes:
            self.write_rows()
            victim = self._conn.execute(
                "SELECT seq, type, size FROM events WHERE priority <= ? "
                "ORDER BY priority, seq LIMIT 1", (int(priority),)).fetchone()
            if victim is None:
                return False
            self._conn.execute("DELETE FROM events WHERE seq = ?", (victim[0],))
            self.depth -= 1
            self.bytes -= int(victim[2])
            self.pending_evictions[victim[1]] += 1
            self.pending_evicted_seqs.add(int(victim[0]))
            self._count_evicted(1)
        return True

    def evict_for_space(self, fraction: float = 0.1) -> int:
        """Disk full: drop the lowest-value tenth of the rows to free pages for new events."""
        n = max(1, int(self.depth * fraction))
        self.write_rows()
        rows = self._conn.execute(
            "SELECT seq, type, size FROM events WHERE priority < ? ORDER BY priority, seq "
            "LIMIT ?", (int(EventPriority.ALARM), n)).fetchall()
        for seq, typ, size in rows:
            self._conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
            self.depth -= 1
            self.bytes -= int(size)
            self.pending_evictions[typ] += 1
            self.pending_evicted_seqs.add(int(seq))
        self._count_evicted(len(rows))
        return len(rows)

    def take_eviction_reports(self) -> list[dict[str, Any]]:
        """The payloads of the ``outbox.evicted`` events for what was evicted since the last
        report: counts per type, ``evicted_total`` and the evicted ``seq`` as ``ranges``;
        several events (``part``, ``parts``; the counts in the first) when the ranges are
        many. Empty when nothing was evicted."""
        if not self.pending_evictions:
            return []
        counts = dict(self.pending_evictions)
        self.pending_evictions.clear()
        chunks = seq_ranges.parts(self.pending_evicted_seqs.take())
        out: list[dict[str, Any]] = []
        for i, chunk in enumerate(chunks):
            payload: dict[str, Any] = {"evicted": counts if i == 0 else {},
                                       "evicted_total": self.evicted_total, "ranges": chunk}
            if len(chunks) > 1:
                payload.update(part=i, parts=len(chunks))
            out.append(payload)
        return out

    def ack(self, seqs: list[int]) -> int:
        """Delete rows the broker acknowledged; returns how many were still there."""
        self.write_rows()
        done = 0
        for seq in seqs:
            row = self._conn.execute("DELETE FROM events WHERE seq = ? RETURNING size",
                                     (seq,)).fetchone()
            if row is not None:
                done += 1
                self.depth -= 1
                self.bytes -= int(row[0])
        return done

    def refused(self, seq: int, reason: str, max_attempts: int) -> tuple[bool, int]:
        """Count a broker refusal: (moved to dead_letter, refusals so far). The count lives
        in the row (``attempts``), so it survives restarts and needs no copy in memory."""
        self.write_rows()
        row = self._conn.execute(
            "UPDATE events SET attempts = attempts + 1 WHERE seq = ? "
            "RETURNING attempts, id, type, body, size, ts", (seq,)).fetchone()
        if row is None:
            return False, 0
        if row[0] < max_attempts:
            return False, int(row[0])
        self._conn.execute(
            "INSERT OR REPLACE INTO dead_letter (seq, id, type, body, reason, ts) "
            "VALUES (?, ?, ?, ?, ?, ?)", (seq, row[1], row[2], row[3], reason, row[5]))
        self._conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
        self.depth -= 1
        self.bytes -= int(row[4])
        return True, int(row[0])

    def purge_older_than(self, cutoff_iso: str) -> tuple[dict[str, int], list[list[int]]]:
        """Retention: drop undelivered rows stamped before ``cutoff_iso`` (clock must be sane).
        Returns the counts per type and the purged ``seq`` as ranges."""
        self.write_rows()
        rows = self._conn.execute(
            "DELETE FROM events WHERE ts < ? RETURNING seq, type, size", (cutoff_iso,)).fetchall()
        counts: Counter[str] = Counter()
        for _, typ, size in rows:
            counts[typ] += 1
            self.depth -= 1
            self.bytes -= int(size)
        return dict(counts), seq_ranges.merge(int(r[0]) for r in rows)

    def seq_gap(self) -> list[list[int]]:
        """The numbers skipped at open because the database was lost or rebuilt: reserved
        (``seq.hwm``) and perhaps used by rows that are gone; none of them will be sent."""
        return [list(r) for r in self._skipped]

    def resync(self) -> None:
        """After a rolled-back transaction: counters follow the database again.

        ``last_seq`` goes back to the last committed number: the numbers handed out in the
        rolled-back transaction were never stored nor published, so they are handed out again
        and the centre sees no gap (a disk full for an hour used to burn thousands).
        """
        self._rows.clear()
        self.last_seq = self._durable_seq
        row = self._conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM events").fetchone()
        self.depth, self.bytes = int(row[0]), int(row[1])
        self.evicted_total = self._meta("evicted_total")
        self._meta_seq = self._meta("last_seq")
        self.pending_evictions.clear()
        self.pending_evicted_seqs.clear()

    # ------------------------------------------------------------------ reading
    def pending(self, after_seq: int = 0, limit: int = 100) -> list[PendingRow]:
        self.write_rows()
        return read_pending(self._conn, after_seq, limit)

    def stats(self) -> OutboxStats:
        self.write_rows()
        return read_stats(self._conn)

    # ------------------------------------------------------------------ meta
    def _meta(self, key: str) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, key: str, value: int) -> None:
        self._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                           "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def _count_evicted(self, n: int) -> None:
        if n:
            self.evicted_total += n
            self._set_meta("evicted_total", self.evicted_total)


_PENDING_COLUMNS = "seq, id, type, priority, body, attempts"


@functools.cache
def _insert_sql(rows: int) -> str:
    return ("INSERT INTO events (seq, id, type, priority, ts, size, body) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * rows))


def read_pending(conn: sqlite3.Connection, after_seq: int, limit: int) -> list[PendingRow]:
    """Rows in seq order; usable from the uplink's own read connection."""
    return [PendingRow(*r) for r in conn.execute(
        f"SELECT {_PENDING_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit))]


def read_row(conn: sqlite3.Connection, seq: int) -> PendingRow | None:
    """One row still waiting (None once acknowledged, evicted or dead-lettered)."""
    row = conn.execute(f"SELECT {_PENDING_COLUMNS} FROM events WHERE seq = ?", (seq,)).fetchone()
    return PendingRow(*row) if row else None


def read_stats(conn: sqlite3.Connection) -> OutboxStats:
    # One statement per figure that must agree: the uplink deletes rows concurrently.
    depth, nbytes = conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM events").fetchone()
    first = conn.execute("SELECT seq, ts FROM events ORDER BY seq LIMIT 1").fetchone()
    oldest, oldest_ts = (first[0], first[1]) if first else (None, None)
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    dead = conn.execute("SELECT count(*) FROM dead_letter").fetchone()[0]
    by_prio = {EventPriority(p).name.lower(): n for p, n in conn.execute(
        "SELECT priority, count(*) FROM events GROUP BY priority")}
    return OutboxStats(depth=int(depth), bytes=int(nbytes), oldest_seq=oldest, oldest_ts=oldest_ts,
                       last_seq=int(meta.get("last_seq", 0)),
                       evicted_total=int(meta.get("evicted_total", 0)), dead_letters=int(dead),
                       by_priority=by_prio)


def figures(conn: sqlite3.Connection) -> dict[str, Any]:
    """Depth, bytes, oldest unsent event and its age (None when the booth clock cannot say)."""
    conn.execute("BEGIN")  # one snapshot: rows are deleted while we read
    try:
        st = read_stats(conn)
    finally:
        conn.execute("COMMIT")
    age: float | None = None
    if st.oldest_ts:
        try:
            then = datetime.fromisoformat(st.oldest_ts.replace("Z", "+00:00"))
            age = round(max(0.0, (datetime.now(UTC) - then).total_seconds()), 1)
        except ValueError:
            age = None
    return {"depth": st.depth, "bytes": st.bytes, "oldest_seq": st.oldest_seq,
            "oldest_age_s": age, "last_seq": st.last_seq, "evicted_total": st.evicted_total,
            "dead_letters": st.dead_letters, "by_priority": st.by_priority}



def _read_hwm(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except FileNotFoundError:
        return 0
    except ValueError:
        log.warning("seq_hwm_unreadable", path=str(path))
        return 0


def _write_hwm(path: Path, value: int) -> None:
    replace_durably(path, f"{value}\n")
