"""The WAL checkpointer: it looks at the WAL's size every ``nudge_every``-th commit, and
checkpoints only past its threshold."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from gated.state.wal import WalCheckpointer
from tests.support.polling import holds_within


def _db(tmp: Path, pages: int) -> tuple[Path, sqlite3.Connection]:
    """A database with ``pages`` rows of 4 KB in its WAL, and the connection that keeps the
    WAL file in place (closing the last connection checkpoints it)."""
    path = tmp / "t.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (x BLOB)")
    for _ in range(pages):
        conn.execute("INSERT INTO t VALUES (?)", (b"x" * 4000,))
    conn.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    for _ in range(pages):
        conn.execute("INSERT INTO t VALUES (?)", (b"y" * 4000,))
    return path, conn


def test_a_checkpoint_runs_on_the_nth_nudge_not_before(tmp_path: Path) -> None:
    path, conn = _db(tmp_path, 64)
    cp = WalCheckpointer(path, threshold_bytes=16 * 1024, check_s=60.0, nudge_every=4)
    cp.start()
    try:
        for _ in range(3):
            cp.nudge()
        time.sleep(0.3)
        assert cp.checkpoints == 0  # three commits: not looked at yet (the backstop is 60 s)
        cp.nudge()
        assert holds_within(lambda: cp.checkpoints == 1, 5.0)
    finally:
        cp.stop()
        conn.close()


def test_below_the_threshold_nothing_is_checkpointed(tmp_path: Path) -> None:
    path, conn = _db(tmp_path, 2)
    cp = WalCheckpointer(path, threshold_bytes=64 * 1024 * 1024, check_s=60.0, nudge_every=1)
    cp.start()
    try:
        for _ in range(5):
            cp.nudge()
        time.sleep(0.3)
        assert cp.checkpoints == 0
    finally:
        cp.stop()
        conn.close()
