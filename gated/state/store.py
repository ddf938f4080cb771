"""The booth's one SQLite file: outbox, sequence numbers, queue and lists in one transaction.

Only the state thread writes (``Store.transaction``); other threads read through their own
``Store.reader()`` connection, which WAL lets run beside the writer. ``synchronous=FULL`` makes
every commit durable before ``transaction()`` returns, which is what lets the app drive a gate
only after the decision is on disk.

Opening checks the file: a damaged one is moved aside, whatever rows can still be read are
copied into a fresh file, and ``Store.recovery`` tells the app to raise an alarm about it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from gated.state.wal import WalCheckpointer

log = structlog.get_logger(__name__)

DB_NAME = "gated.db"
SchemaHook = Callable[[sqlite3.Connection], None]  # CREATE ... IF NOT EXISTS, on the writer


class StorageError(Exception):
    """The state directory or database cannot be used; the message says what to do.
    ``reason`` is a slug: ``disk_full``, ``read_only``, ``io_error``, ``cannot_open``..."""

    reason = "storage_error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class StorageFull(StorageError):
    """SQLite reported the disk (or ``max_page_count``) full."""

    reason = "disk_full"


@dataclass
class Recovery:
    """What happened when a damaged database was found at open."""

    moved_to: str
    error: str
    salvaged: dict[str, int] = field(default_factory=dict)
    lost_tables: list[str] = field(default_factory=list)


def check_state_dir(path: Path) -> None:
    """Create ``path`` if needed and prove it is writable, with an actionable error if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(
            f"cannot create state directory {path}: {e.strerror}; create it and give the "
            f"gated user write access, or set state_dir in the config"
        ) from None
    probe = path / f".write-test-{os.getpid()}"
    try:
        with open(probe, "wb") as f:
            f.write(b"ok")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        raise StorageError(
            f"state directory {path} is not writable ({e.strerror}); fix its permissions "
            f"(chown -R gated: {path}) or free disk space, or set state_dir in the config"
        ) from None


class Store:
    def __init__(self, state_dir: Path, schema_hooks: list[SchemaHook] | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / DB_NAME
        self._hooks = list(schema_hooks or [])
        self._conn: sqlite3.Connection | None = None
        self.recovery: Recovery | None = None
        self._depth = 0
        self.checkpointer = WalCheckpointer(self.path)
        #: Called inside every transaction just before COMMIT (the outbox writes its
        #: sequence high-water mark once per transaction there, not once per event).
        self.before_commit: list[Callable[[], None]] = []
        #: Called after every COMMIT that succeeded (the outbox notes what is now durable).
        self.after_commit: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        check_state_dir(self.state_dir)
        if self.path.exists():
            problem = _integrity_problem(self.path)
            if problem:
                self.recovery = self._quarantine(problem)
        self._conn = _connect(self.path)
        for hook in self._hooks:
            hook(self._conn)
        if self.recovery:
            self._salvage(self.recovery)
        self.checkpointer.start()

    def close(self) -> None:
        self.checkpointer.stop()
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError("store is not open")
        return self._conn

    def reader(self) -> sqlite3.Connection:
        """A separate read-only connection for another thread (the uplink)."""
        return open_readonly(self.path)

    # ------------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One durable transaction; nested calls join the outer one."""
        conn = self.conn
        if self._depth:
            self._depth += 1
            try:
                yield conn
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            conn.execute("BEGIN IMMEDIATE")
            changes = conn.total_changes
            yield conn
            for hook in self.before_commit:
                hook()
            conn.execute("COMMIT")
            if conn.total_changes != changes:  # the WAL grew
                self.checkpointer.nudge()
            for hook in self.after_commit:
                hook()
        except BaseException as e:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            storage = storage_error(e) if isinstance(e, sqlite3.OperationalError) else None
            if storage is not None:
                raise storage from e
            raise
        finally:
            self._depth = 0

    def checkpoint(self, mode: str = "PASSIVE") -> tuple[int, int, int]:
        """Keep the WAL bounded; TRUNCATE when idle gives the space back to the file system."""
        row = self.conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return (int(row[0]), int(row[1]), int(row[2]))

    def has_room(self, want: int = 2 * 1024 * 1024) -> bool:
        """Whether the state directory's file system has ``want`` bytes free (a tenth of it,
        on one smaller than ten times that)."""
        try:
            st = os.statvfs(self.state_dir)
        except OSError:
            return False
        return st.f_bavail * st.f_frsize >= min(want, st.f_blocks * st.f_frsize // 10)

    def wal_bytes(self) -> int:
        try:
            return (self.path.parent / (self.path.name + "-wal")).stat().st_size
        except FileNotFoundError:
            return 0

    # ------------------------------------------------------------------ corruption
    def _quarantine(self, problem: str) -> Recovery:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                src.rename(Path(str(target) + suffix))
        log.error("database_corrupt", path=str(self.path), moved_to=str(target), error=problem)
        return Recovery(moved_to=str(target), error=problem)

    def _salvage(self, rec: Recovery) -> None:
        """Copy every readable row of every table we know from the damaged file."""
        conn = self.conn
        try:
            src = open_readonly(Path(rec.moved_to))
        except sqlite3.Error as e:
            rec.lost_tables.append(f"*: {e}")
            return
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        try:
            conn.execute("BEGIN IMMEDIATE")
            for table in tables:
                cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
                rows = _readable_rows(src, table, cols)
                if rows is None:
                    rec.lost_tables.append(table)
                    continue
                if rows:
                    conn.executemany(
                        f'INSERT OR REPLACE INTO "{table}" ({", ".join(f"[{c}]" for c in cols)})'
                        f' VALUES ({", ".join("?" * len(cols))})', rows)
                rec.salvaged[table] = len(rows)
            conn.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        finally:
            src.close()
        log.warning("database_salvaged", salvaged=rec.salvaged, lost=rec.lost_tables)


def open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to ``path``, usable from any thread: it never creates the file
    (a missing one is an error, not an empty outbox) and reads beside a live writer (WAL)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False,
                           isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA journal_size_limit=16777216")
    # A backstop only: WalCheckpointer checkpoints at ~1000 pages beside the writer, so that
    # no commit carries a checkpoint; this one runs if that thread cannot.
    conn.execute("PRAGMA wal_autocheckpoint=8192")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _integrity_problem(path: Path) -> str | None:
    try:
        conn = open_readonly(path)
        try:
            row = conn.execute("PRAGMA quick_check(1)").fetchone()
            if row is None or row[0] != "ok":
                return f"quick_check: {row[0] if row else 'no answer'}"
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        return str(e)
    return None


def _readable_rows(src: sqlite3.Connection, table: str, cols: list[str]) -> list[tuple] | None:
    collist = ", ".join(f'"{c}"' for c in cols)
    try:
        return src.execute(f'SELECT {collist} FROM "{table}"').fetchall()
    except sqlite3.DatabaseError:
        pass
    # The table is damaged somewhere: walk it by rowid and keep what reads.
    try:
        lo, hi = src.execute(f'SELECT min(rowid), max(rowid) FROM "{table}"').fetchone()
    except sqlite3.DatabaseError:
        return None
    if lo is None:
        return []
    rows: list[tuple] = []
    step = 64
    start = lo
    while start <= hi:
        try:
            rows.extend(src.execute(
                f'SELECT {collist} FROM "{table}" WHERE rowid >= ? AND rowid < ?',
                (start, start + step)).fetchall())
        except sqlite3.DatabaseError:
            for rid in range(start, start + step):
                with contextlib.suppress(sqlite3.DatabaseError):
                    rows.extend(src.execute(
                        f'SELECT {collist} FROM "{table}" WHERE rowid = ?', (rid,)).fetchall())
        start += step
    return rows


_STORAGE_CODES = {sqlite3.SQLITE_FULL: "disk_full", sqlite3.SQLITE_READONLY: "read_only",
                  sqlite3.SQLITE_IOERR: "io_error", sqlite3.SQLITE_CANTOPEN: "cannot_open"}


def storage_error(e: sqlite3.OperationalError) -> StorageError | None:
    """The storage failure ``e`` stands for (nothing can be written, whatever the job), or
    None for an error of the job itself (a bad statement, a constraint)."""
    code = getattr(e, "sqlite_errorcode", 0) & 0xFF  # the primary result code
    reason = _STORAGE_CODES.get(code) or ("disk_full" if "full" in str(e).lower() else None)
    if reason is None:
        return None
    cls = StorageFull if reason == "disk_full" else StorageError
    return cls(f"{e}", reason=reason)
