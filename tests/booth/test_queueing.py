"""The service queue on a real SQLite store: numbering, calling order, fairness, estimates."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gated.booth import queueing
from gated.booth.queueing import Lane, Queue, QueueError, TicketState
from gated.config import parse_config
from gated.state.store import Store

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
CFG = parse_config("""
[site]
id = "t"
[booth]
id = "b"
[queue]
max_priority_run = 2
max_wait_min = 30
booth_prefix = "1"
[services.general]
name = "综合"
prefix = "A"
[services.social]
name = "社保"
prefix = "B"
width = 4
default_minutes = 5
""")


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    store = Store(tmp_path, [queueing.ensure_schema])
    store.open()
    try:
        yield store.conn
    finally:
        store.close()


def test_numbers_per_service_with_prefix_and_width(conn: sqlite3.Connection) -> None:
    q = Queue(CFG)
    numbers = [q.issue(conn, s, T0).number for s in ("general", "general", "social")]
    assert numbers == ["1A001", "1A002", "1B0001"]


def test_numbers_reset_at_local_midnight(conn: sqlite3.Connection) -> None:
    q = Queue(CFG)
    q.issue(conn, "general", T0)
    late = datetime(2026, 11, 23, 23, 59, tzinfo=TZ)
    assert q.issue(conn, "general", late).number == "1A002"
    assert q.issue(conn, "general", late + timedelta(minutes=2)).number == "1A001"


def test_numbers_survive_a_restart(tmp_path: Path) -> None:
    q = Queue(CFG)
    with Store(tmp_path, [queueing.ensure_schema]) as store, store.transaction() as c:
        q.issue(c, "general", T0)
    with Store(tmp_path, [queueing.ensure_schema]) as store, store.transaction() as c:
        assert q.issue(c, "general", T0).number == "1A002"


def test_rolled_back_number_is_not_consumed(tmp_path: Path) -> None:
    q = Queue(CFG)
    with Store(tmp_path, [queueing.ensure_schema]) as store:
        with pytest.raises(RuntimeError), store.transaction() as c:
            q.issue(c, "general", T0)
            raise RuntimeError("crash before commit")
        with store.transaction() as c:
            assert q.issue(c, "general", T0).number == "1A001"


def test_priority_first_but_bounded(conn: sqlite3.Connection) -> None:
    q = Queue(CFG)
    r1 = q.issue(conn, "general", T0)
    prio = [q.issue(conn, "general", T0 + timedelta(seconds=i), priority_reason="elderly")
            for i in range(1, 5)]
    order = [q.call_next(conn, "c1", None, T0 + timedelta(minutes=1)) for _ in range(5)]
    assert [t.ticket_id if t else None for t in order] == [
        prio[0].ticket_id, prio[1].ticket_id, r1.ticket_id, prio[2].ticket_id,
        prio[3].ticket_id]


def test_ageing_calls_a_long_waiting_regular_ticket(conn: sqlite3.Connection) -> None:
    q = Queue(CFG)
    old = q.issue(conn, "general", T0)
    q.issue(conn, "general", T0, priority_reason="assist")
    t = q.call_next(conn, "c1", None, T0 + timedelta(minutes=31))
    assert t is not None and t.ticket_id == old.ticket_id


def test_appointments_by_booked_time(conn: sqlite3.Connection) -> None:
    q = Queue(CFG)
    later = q.issue(conn, "social", T0, appointment_ref="R2", booked=T0 + timedelta(minutes=30))
    earlier = q.issue(conn, "social", T0 + timedelta(minutes=1), appointment_ref="R1",
                      booked=T0 + timedelta(minutes=15))
    assert later.lane is Lane.PRIORITY
    first = q.call_next(conn, "c1", ["social"], T0 + timedelta(minutes=5))
    assert first is not None and first.ticket_id == earlier.ticket_id


def test_recall_no_show_served_transfer(conn: sqlite3.Connection) -> None:
    q = Queue(CFG)
    a = q.issue(conn, "general", T0)
    with pytest.raises(QueueError) as e:
        q.recall(conn, "c1")
    assert e.value.reason == "no_current_ticket"
    q.call_next(conn, "c1", ["general"], T0)
    assert q.recall(conn, "c1").recalls == 1
    assert q.recall(conn, "c1").recalls == 2
    with pytest.raises(QueueError) as e:
        q.recall(conn, "c1")
    assert e.value.reason == "recall_limit"
    moved = q.transfer(conn, "c1", "social")
    assert (moved.service, moved.state, moved.number) == ("social", TicketState.WAITING,
                                                          a.number)
    again = q.call_next(conn, "c2", ["social"], T0 + timedelta(minutes=2))
    assert again is not None and again.history == ("c1", "c2")
    assert q.close(conn, "c2", TicketState.NO_SHOW, T0 + timedelta(minutes=3)).state \
        is TicketState.NO_SHOW
    with pytest.raises(QueueError):
        q.transfer(conn, "c2", "nowhere")


def test_wait_estimate_uses_service_times_and_counters(conn: sqlite3.Connection) -> None:
    q = Queue(CFG)
    for i in range(4):
        q.issue(conn, "social", T0 + timedelta(seconds=i))
    t = q.issue(conn, "social", T0 + timedelta(seconds=10))
    assert q.estimate(conn, t, T0) == (4, 20)  # 4 ahead x default 5 min, one counter
    for c in ("c1", "c2"):
        q.touch_counter(conn, c, ["social"], T0)
        q.call_next(conn, c, ["social"], T0)
    q.call_next(conn, "c1", ["social"], T0 + timedelta(minutes=2))  # c1 served in 2 min
    ahead, wait = q.estimate(conn, t, T0 + timedelta(minutes=2))
    assert ahead == 1 and wait == 1  # 1 ahead x 2 min / 2 counters


def test_stats_and_expiry(conn: sqlite3.Connection) -> None:
    q = Queue(CFG)
    q.issue(conn, "general", T0)
    q.issue(conn, "general", T0)
    q.call_next(conn, "c1", ["general"], T0 + timedelta(minutes=6))
    s = q.stats(conn, T0.date())["general"]
    assert (s["waiting"], s["called"], s["max_wait_min"]) == (1, 1, 6.0)
    assert q.expire_before(conn, (T0 + timedelta(days=1)).date(), T0) == 2
    assert q.waiting_count(conn) == 0


# ------------------------------------------------------------------ fairness, by hypothesis

steps = st.lists(st.one_of(st.tuples(st.just("arrive"), st.booleans()),
                           st.tuples(st.just("arrive"), st.booleans()),
                           st.tuples(st.just("call"), st.just(False)),
                           st.tuples(st.just("wait"), st.integers(1, 20))),
                 min_size=1, max_size=120)
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURE_OK)
@given(steps=steps, run=st.integers(1, 4))
def test_no_regular_ticket_starves(conn: sqlite3.Connection, steps: list[tuple[str, object]],
                                   run: int) -> None:
    """Over any arrival/call sequence: regular tickets are FIFO, at most ``run`` priority calls
    happen between two regular calls while a regular ticket waits, and a regular ticket that
    has waited the limit is the next one called."""
    conn.execute("DELETE FROM q_tickets")
    conn.execute("DELETE FROM q_meta")
    cfg = CFG.model_copy(update={"queue": CFG.queue.model_copy(
        update={"max_priority_run": run, "max_wait_min": 30})})
    q = Queue(cfg)
    now = T0
    waiting_regular: list[tuple[str, datetime]] = []
    prio_streak = 0
    for kind, arg in steps:
        if kind == "arrive":
            t = q.issue(conn, "general", now, priority_reason="elderly" if arg else None)
            if not arg:
                waiting_regular.append((t.ticket_id, now))
        elif kind == "wait":
            now += timedelta(minutes=int(arg))  # type: ignore[call-overload]
        else:
            had_regular = bool(waiting_regular)
            aged = had_regular and now - waiting_regular[0][1] >= timedelta(minutes=30)
            called = q.call_next(conn, "c1", ["general"], now)
            if called is None:
                assert not had_regular
                continue
            if called.lane is Lane.REGULAR:
                assert called.ticket_id == waiting_regular.pop(0)[0]  # FIFO
                prio_streak = 0
            else:
                assert not aged, "an aged regular ticket was passed over"
                if had_regular:
                    prio_streak += 1
                    assert prio_streak <= run


def test_a_paused_counter_calls_nobody_and_is_not_counted_open(conn: sqlite3.Connection) -> None:
    q = Queue(CFG)
    for i in range(3):
        q.issue(conn, "social", T0 + timedelta(seconds=i))
    for c in ("c1", "c2"):
        q.touch_counter(conn, c, ["social"], T0)
        q.call_next(conn, c, ["social"], T0)
    assert q.open_counters(conn, "social", T0) == 2
    assert q.set_paused(conn, "c2", True) and not q.set_paused(conn, "c2", True)
    assert q.open_counters(conn, "social", T0) == 1
    assert q.wait_minutes(conn, "social", 1, T0) == 5  # one open counter, default 5 min
    with pytest.raises(QueueError) as e:
        q.call_next(conn, "c2", ["social"], T0)
    assert e.value.reason == "counter_paused"
    board = q.counters(conn)
    assert board["c2"]["paused"] and board["c2"]["current"]["number"] == "1B0002"  # kept
    assert q.set_paused(conn, "c2", False)
    called = q.call_next(conn, "c2", ["social"], T0 + timedelta(minutes=1))
    assert called is not None and called.number == "1B0003"
    calls = q.recent_calls(conn, T0.date())
    assert [c["number"] for c in calls] == ["1B0003", "1B0002", "1B0001"]
    assert calls[0]["counter"] == "c2"


def test_the_paused_column_is_added_to_an_older_state_file(tmp_path: Path) -> None:
    store = Store(tmp_path, [])
    store.open()
    store.conn.execute("CREATE TABLE q_counters (counter TEXT PRIMARY KEY, services TEXT NOT "
                       "NULL, last_call TEXT)")
    store.conn.execute("INSERT INTO q_counters VALUES ('c1', ?, NULL)", ('["general"]',))
    store.close()
    store = Store(tmp_path, [queueing.ensure_schema])
    store.open()
    try:
        assert Queue(CFG).set_paused(store.conn, "c1", True)
    finally:
        store.close()
