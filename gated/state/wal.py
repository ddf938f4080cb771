"""Checkpointing the WAL beside the writer, so no commit ever waits for a checkpoint.

SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold: with
``synchronous=FULL`` that one commit copies megabytes into the database file and fsyncs it,
and every event waiting in that batch is late by as much (the p99 of durable appends was
made of those commits). Here a thread with its own connection runs a PASSIVE checkpoint when
the WAL passes ``threshold_bytes``; in WAL mode a checkpoint and a writer run at the same
time, and the writer starts the WAL over once it has been copied.

What a caller must know:
- The writer keeps a much larger automatic checkpoint as a backstop (``store.py``), so the WAL
  stays bounded even if this thread is stopped or stuck.
- ``start()`` and ``stop()`` are explicit; ``Store.open()`` and ``Store.close()`` call them.
- ``nudge()`` after a commit makes it look at the WAL's size every ``nudge_every``-th commit
  (a commit adds a few pages, so the WAL overshoots the threshold by a few hundred KiB at most,
  and a visitor's ten commits cost one wake-up, not ten); without nudges it looks every
  ``check_s`` (a backstop): an idle booth costs no wake-ups.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import structlog

from drivers.threads import named_thread

log = structlog.get_logger(__name__)

THRESHOLD_BYTES = 4 * 1024 * 1024  # ~1000 pages, SQLite's own default threshold
CHECK_S = 10.0
NUDGE_EVERY = 16


class WalCheckpointer:
    def __init__(self, db_path: Path, threshold_bytes: int = THRESHOLD_BYTES,
                 check_s: float = CHECK_S, nudge_every: int = NUDGE_EVERY) -> None:
        self.db_path = db_path
        self.wal_path = db_path.with_name(db_path.name + "-wal")
        self.threshold_bytes = threshold_bytes
        self.check_s = check_s
        self.nudge_every = nudge_every
        self._nudges = 0
        self.checkpoints = 0
        self._stop = threading.Event()
        self._nudged = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = named_thread(self._run, "gated-wal")
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._nudged.set()
            thread.join(10)

    def nudge(self) -> None:
        """The WAL grew (a commit): every ``nudge_every``-th call, check its size now. Cheap;
        meant for the one writer thread (the count is not locked)."""
        self._nudges += 1
        if self._nudges >= self.nudge_every:
            self._nudges = 0
            self._nudged.set()

    def _wal_bytes(self) -> int:
        try:
            return self.wal_path.stat().st_size
        except FileNotFoundError:
            return 0

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._nudged.wait(self.check_s)
                self._nudged.clear()
                if self._stop.is_set():
                    break
                if self._wal_bytes() < self.threshold_bytes:
                    continue
                if conn is None:
                    conn = sqlite3.connect(self.db_path, isolation_level=None)
                    conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.checkpoints += 1
        except sqlite3.Error as e:
            # The writer's own backstop checkpoint keeps the WAL bounded without us.
            log.warning("wal_checkpointer_failed", path=str(self.db_path), error=str(e))
        finally:
            if conn is not None:
                conn.close()
