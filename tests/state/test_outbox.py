"""The outbox: order, bounds, eviction by priority, acks, dead letters, durability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gated.config import OutboxConfig
from gated.state.events import Event, EventPriority, EventType
from gated.state.loop import StateLoop
from gated.state.outbox import Outbox, ensure_schema, read_pending, read_stats
from gated.state.store import Store

ROOT = Path(__file__).resolve().parents[2]


def _open(tmp: Path, **cfg: object) -> tuple[Store, Outbox]:
    store = Store(tmp, [ensure_schema])
    store.open()
    ob = Outbox(store, OutboxConfig(**cfg), "s", "b")  # type: ignore[arg-type]
    return store, ob


def _append(store: Store, ob: Outbox, type: EventType, n: int = 1,
            priority: EventPriority | None = None) -> list[Event]:
    with store.transaction():
        return [ob.append(Event.make(type, {"i": i}, priority=priority)) for i in range(n)]


def test_seq_is_monotonic_across_restarts(tmp_path: Path) -> None:
    store, ob = _open(tmp_path)
    first = _append(store, ob, EventType.TICKET_ISSUED, 5)
    with store.transaction():
        ob.ack([e.seq for e in first])
    store.close()
    store, ob = _open(tmp_path)
    again = _append(store, ob, EventType.TICKET_ISSUED, 2)
    assert [e.seq for e in first] == [1, 2, 3, 4, 5]
    assert [e.seq for e in again] == [6, 7]
    store.close()


def test_lost_database_never_reuses_a_seq(tmp_path: Path) -> None:
    store, ob = _open(tmp_path)
    _append(store, ob, EventType.TICKET_ISSUED, 3)
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(store.path) + suffix).unlink(missing_ok=True)
    store, ob = _open(tmp_path)
    (ev,) = _append(store, ob, EventType.TICKET_ISSUED)
    assert ev.seq > 3
    store.close()


def test_eviction_takes_lowest_priority_then_lowest_seq(tmp_path: Path) -> None:
    store, ob = _open(tmp_path, max_rows=100, reserved_fraction=0.1)
    hb = _append(store, ob, EventType.HEARTBEAT, 40)
    tickets = _append(store, ob, EventType.TICKET_ISSUED, 50)
    more = _append(store, ob, EventType.TICKET_ISSUED, 10)  # 100 > 90: evict 10 heartbeats
    seqs = {r.seq for r in read_pending(store.conn, 0, 1000)}
    assert not any(e.seq in seqs for e in hb[:10])
    assert all(e.seq in seqs for e in hb[10:] + tickets + more)
    assert ob.depth == 90 and read_stats(store.conn).evicted_total == 10
    first, last = hb[0].seq, hb[9].seq
    assert ob.take_eviction_reports() == [{"evicted": {"heartbeat": 10}, "evicted_total": 10,
                                           "ranges": [[first, last]]}]
    store.close()


def test_alarms_have_reserved_room_and_evict_only_alarms(tmp_path: Path) -> None:
    store, ob = _open(tmp_path, max_rows=100, reserved_fraction=0.1)
    _append(store, ob, EventType.TICKET_ISSUED, 90)
    tickets_more = _append(store, ob, EventType.TICKET_ISSUED, 5)  # evicts oldest tickets
    assert ob.depth == 90
    alarms = _append(store, ob, EventType.ALARM, 10)  # fits in the reserve
    assert ob.depth == 100
    late = _append(store, ob, EventType.ALARM, 3)  # full: evicts oldest normal rows first
    seqs = {r.seq for r in read_pending(store.conn, 0, 1000)}
    assert all(e.seq in seqs for e in alarms + late + tickets_more)
    store.close()


def test_normal_event_is_dropped_when_only_alarms_remain(tmp_path: Path) -> None:
    store, ob = _open(tmp_path, max_rows=100, reserved_fraction=0.1)
    _append(store, ob, EventType.ALARM, 100)
    (t,) = _append(store, ob, EventType.TICKET_ISSUED)
    assert t.seq == 101 and ob.depth == 100
    assert ob.take_eviction_reports() == [{"evicted": {"ticket.issued": 1},
                                           "evicted_total": 1, "ranges": [[101, 101]]}]
    (nxt,) = _append(store, ob, EventType.ALARM)
    assert nxt.seq == 102  # the dropped number is never reused
    store.close()


def test_byte_bound(tmp_path: Path) -> None:
    store, ob = _open(tmp_path, max_rows=10_000, max_bytes=64 * 1024, reserved_fraction=0.0)
    _append(store, ob, EventType.TICKET_ISSUED, 1000)
    assert ob.bytes <= 64 * 1024
    assert read_stats(store.conn).bytes == ob.bytes
    store.close()


def test_ack_frees_room_at_once(tmp_path: Path) -> None:
    store, ob = _open(tmp_path, max_rows=100, reserved_fraction=0.0)
    evs = _append(store, ob, EventType.TICKET_ISSUED, 100)
    with store.transaction():
        assert ob.ack([e.seq for e in evs[:50]]) == 50
        assert ob.ack([evs[0].seq]) == 0  # a duplicate PUBACK is harmless
    _append(store, ob, EventType.TICKET_ISSUED, 50)
    assert ob.take_eviction_reports() == [] and ob.depth == 100
    store.close()


def test_refused_rows_go_to_dead_letter(tmp_path: Path) -> None:
    store, ob = _open(tmp_path)
    (ev,) = _append(store, ob, EventType.TICKET_ISSUED)
    with store.transaction():
        assert ob.refused(ev.seq, "packet too large", max_attempts=2) == (False, 1)
        assert ob.refused(ev.seq, "packet too large", max_attempts=2) == (True, 2)
    st = read_stats(store.conn)
    assert st.depth == 0 and st.dead_letters == 1
    store.close()


def test_rows_written_at_commit_are_seen_by_everything_inside_the_transaction(
        tmp_path: Path) -> None:
    """Rows are INSERTed at commit in chunks (128, 64, ..., 1); every read, ack, refusal and
    eviction in the same transaction sees the rows appended before it, and a rollback leaves
    neither rows nor counters behind."""
    store, ob = _open(tmp_path, max_rows=250, reserved_fraction=0.0)
    def one() -> Event:
        return ob.append(Event.make(EventType.TICKET_ISSUED, {}))

    with store.transaction():
        evs = [ob.append(Event.make(EventType.TICKET_ISSUED, {"i": i})) for i in range(197)]
        assert ob.ack([evs[0].seq]) == 1
        evs.append(one())
        assert ob.refused(evs[-1].seq, "too large", max_attempts=1) == (True, 1)
        evs.append(one())
        assert ob.pending(evs[-2].seq, 3)[0].seq == evs[-1].seq
        evs.append(one())
        assert ob.stats().depth == 198
        more = [ob.append(Event.make(EventType.HEARTBEAT, {"i": i})) for i in range(53)]
        # 198 + 53 = 251 > 250: the oldest lowest-priority row, appended in this transaction,
        # is the one evicted.
        assert ob.take_eviction_reports() == [{"evicted": {"heartbeat": 1}, "evicted_total": 1,
                                               "ranges": [[more[0].seq, more[0].seq]]}]
    rows = read_pending(store.conn, 0, 1000)
    assert [r.seq for r in rows] == [e.seq for e in evs[1:-3] + evs[-2:] + more[1:]]
    assert all(r.body.startswith("{") and r.attempts == 0 for r in rows)
    assert read_stats(store.conn).depth == ob.depth == 250
    with pytest.raises(RuntimeError), store.transaction():
        ob.append(Event.make(EventType.TICKET_ISSUED, {"i": -1}))
        raise RuntimeError("handler failed")
    ob.resync()
    assert read_stats(store.conn).depth == ob.depth == 250
    with store.transaction():
        (late,) = [ob.append(Event.make(EventType.ALARM, {"kind": "x"}))]
    assert read_pending(store.conn, 0, 1000)[-1].seq == late.seq  # no stale row came back
    assert len(read_pending(store.conn, 0, 1000)) == 250
    store.close()
    store, ob = _open(tmp_path / "fresh")
    with store.transaction():
        for _ in range(10):
            one()
        assert ob.evict_for_space(0.5) == 5
        for _ in range(3):
            one()
        counts, gone = ob.purge_older_than("9999-01-01T00:00:00Z")
        assert counts == {"ticket.issued": 8} and sum(b - a + 1 for a, b in gone) == 8
    assert read_stats(store.conn).depth == ob.depth == 0
    store.close()


def test_group_commit_batches_concurrent_appends(tmp_path: Path) -> None:
    store, ob = _open(tmp_path)
    loop = StateLoop(store, ob)
    loop.start()
    futs = [loop.call(lambda b: b.emit(EventType.TICKET_ISSUED).seq) for _ in range(500)]
    seqs = [f.result(timeout=10) for f in futs]
    loop.stop()
    assert seqs == sorted(seqs) and len(set(seqs)) == 500
    assert loop.commits < 500  # several appends shared one fsync
    store.close()


def test_failing_item_rolls_back_alone(tmp_path: Path) -> None:
    store, ob = _open(tmp_path)
    loop = StateLoop(store, ob)
    loop.start()
    ran: list[str] = []

    def bad(b):  # type: ignore[no-untyped-def]
        b.emit(EventType.TICKET_ISSUED, {"bad": True})
        b.after_commit(lambda: ran.append("bad"))
        raise RuntimeError("boom")

    f1 = loop.call(lambda b: b.emit(EventType.TICKET_ISSUED).seq)
    f2 = loop.call(bad)
    f3 = loop.call(lambda b: b.emit(EventType.TICKET_ISSUED).seq)
    assert f1.result(5) and f3.result(5)
    with pytest.raises(RuntimeError):
        f2.result(5)
    loop.stop()
    bodies = [r.body for r in read_pending(store.conn, 0, 100)]
    assert not any('"bad"' in b for b in bodies) and not ran
    store.close()


def test_disk_full_evicts_low_value_and_keeps_serving(tmp_path: Path) -> None:
    store, ob = _open(tmp_path, max_rows=1_000_000, max_bytes=1 << 30)
    loop = StateLoop(store, ob)
    _append(store, ob, EventType.HEARTBEAT, 2000)
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages}")
    loop.start()
    futs = [loop.call(lambda b: b.emit(EventType.ALARM, {"x": "y" * 200}).seq)
            for _ in range(300)]
    seqs = [f.result(10) for f in futs]
    loop.stop()
    assert len(seqs) == 300
    stats = read_stats(store.conn)
    assert stats.by_priority.get("alarm", 0) >= 300 and stats.evicted_total > 0
    store.close()


def test_sigkill_mid_burst_loses_no_committed_event(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.outbox_writer",
                             str(tmp_path)], stdout=subprocess.PIPE, cwd=ROOT, env=env)
    assert proc.stdout is not None
    confirmed: list[tuple[int, str]] = []
    deadline = time.monotonic() + 30
    while len(confirmed) < 2000 and time.monotonic() < deadline:
        line = proc.stdout.readline().split()
        if line:
            confirmed.append((int(line[0]), line[1].decode()))
    proc.send_signal(signal.SIGKILL)
    rest = proc.stdout.read().split(b"\n")
    proc.wait()
    confirmed += [(int(x.split()[0]), x.split()[1].decode()) for x in rest if x.strip()]
    assert len(confirmed) >= 2000
    store, ob = _open(tmp_path)
    rows = {r.seq: r.id for r in read_pending(store.conn, 0, 1_000_000)}
    for seq, eid in confirmed:
        assert rows.get(seq) == eid, f"committed event {seq} lost"
    assert sorted(rows) == list(range(1, len(rows) + 1))  # no hole, no reuse
    (nxt,) = _append(store, ob, EventType.TICKET_ISSUED)
    assert nxt.seq == max(rows) + 1
    store.close()


def test_evicted_ranges_name_every_number_evicted_and_split_when_many(tmp_path: Path) -> None:
    """Evicted numbers come as merged [first, last] ranges; when interleaved priorities make
    them many, the report is split into parts that together name every evicted number."""
    from gated.state import ranges

    store, ob = _open(tmp_path, max_rows=4000, reserved_fraction=0.0)
    with store.transaction():
        evs = [ob.append(Event.make(EventType.HEARTBEAT if i % 2 else EventType.TICKET_ISSUED,
                                    {"i": i})) for i in range(4000)]
    heartbeats = [e.seq for e in evs if e.type is EventType.HEARTBEAT]
    with store.transaction():
        freed = ob.evict_for_space(0.5)  # 2000 heartbeats, every second number
    assert freed == 2000
    reports = ob.take_eviction_reports()
    assert len(reports) == 4 and [r["part"] for r in reports] == [0, 1, 2, 3]
    assert reports[0]["evicted"] == {"heartbeat": 2000} and reports[1]["evicted"] == {}
    named = [s for r in reports for a, b in r["ranges"] for s in range(a, b + 1)]
    assert named == heartbeats
    assert ranges.merge([5, 3, 4, 9, 9, 1]) == [[1, 1], [3, 5], [9, 9]]
    store.close()
