"""The booth session number: one more at every start, in every envelope, never smaller than
before, whatever happened to the file that keeps it."""

from __future__ import annotations

import json
from pathlib import Path

from gated.config import OutboxConfig
from gated.state import Event, EventType, SessionSource
from gated.state.outbox import Outbox, ensure_schema
from gated.state.session import SESSION_FILE, claim, read_file
from gated.state.store import Store


def _start(state: Path) -> tuple[Store, Outbox]:
    store = Store(state, [ensure_schema])
    store.open()
    return store, Outbox(store, OutboxConfig(), "s", "b")


def _session(state: Path) -> tuple[int, SessionSource]:
    store, ob = _start(state)
    try:
        with store.transaction():
            ob.append(Event.make(EventType.HEARTBEAT, {}))
        body = json.loads(store.conn.execute("SELECT body FROM events ORDER BY seq DESC "
                                             "LIMIT 1").fetchone()[0])
        assert body["session"] == ob.session.number  # stamped into the envelope
        return ob.session.number, ob.session.source
    finally:
        store.close()


def test_every_start_takes_the_next_number(tmp_path: Path) -> None:
    assert _session(tmp_path) == (1, SessionSource.FIRST)
    assert _session(tmp_path) == (2, SessionSource.FILE)
    assert _session(tmp_path) == (3, SessionSource.FILE)
    assert read_file(tmp_path / SESSION_FILE) == 3


def test_a_damaged_file_falls_back_to_the_database_copy(tmp_path: Path) -> None:
    for _ in range(5):
        _session(tmp_path)
    path = tmp_path / SESSION_FILE
    path.write_text("9 00000000\n")  # a flipped digit: the checksum no longer matches
    assert _session(tmp_path) == (6, SessionSource.DATABASE)
    path.write_bytes(b"\x00" * 16)  # zeroed by a power cut
    assert _session(tmp_path) == (7, SessionSource.DATABASE)
    path.unlink()
    assert _session(tmp_path) == (8, SessionSource.DATABASE)


def test_a_database_copy_ahead_of_the_file_wins(tmp_path: Path) -> None:
    """The file is restored from an old backup: the database still knows better."""
    _session(tmp_path)
    old = (tmp_path / SESSION_FILE).read_bytes()
    _session(tmp_path)
    _session(tmp_path)
    (tmp_path / SESSION_FILE).write_bytes(old)
    assert _session(tmp_path) == (4, SessionSource.DATABASE)


def test_every_copy_lost_resumes_above_any_count(tmp_path: Path) -> None:
    """The database is gone and the file damaged, but the booth has run here (its sequence
    reservation is there): the count resumes at the wall clock, far above any restart count,
    and goes on counting from there."""
    for _ in range(3):
        _session(tmp_path)
    for name in ("gated.db", "gated.db-wal", "gated.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    (tmp_path / SESSION_FILE).write_text("garbage\n")
    n, source = _session(tmp_path)
    assert source is SessionSource.CLOCK and n > 1_700_000_000
    assert _session(tmp_path) == (n + 1, SessionSource.FILE)


def test_claim_on_a_read_only_file_still_counts_in_the_database(tmp_path: Path) -> None:
    store = Store(tmp_path, [ensure_schema])
    store.open()
    try:
        first = claim(tmp_path, store.conn, ran_before=False)
        (tmp_path / SESSION_FILE).unlink()
        (tmp_path / SESSION_FILE).mkdir()  # the file cannot be replaced any more
        second = claim(tmp_path, store.conn, ran_before=True)
        assert (first.number, second.number) == (1, 2) and second.persisted
        third = claim(tmp_path, store.conn, ran_before=True)
        assert third.number == 3 and third.source is SessionSource.DATABASE
    finally:
        store.close()
