"""The state loop: a caller that gave up is never acted on later; evictions are reported."""

from __future__ import annotations

import threading
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import pytest

from gated.config import OutboxConfig
from gated.state.events import EventType
from gated.state.loop import Batch
from tests.support.state_rig import StateRig


def test_timed_out_call_is_withdrawn_not_run_late(tmp_path: Path) -> None:
    rig = StateRig(tmp_path)
    loop = rig.loop
    release = threading.Event()
    ran: list[str] = []
    try:
        busy = threading.Event()

        def slow_item(b: Batch) -> None:
            busy.set()
            release.wait(5)
        loop.post(slow_item)  # the state thread is busy with a slow item
        assert busy.wait(5)

        def open_gate(b: Batch) -> str:
            ran.append("open_gate")
            b.emit(EventType.GATE_COMMAND, {"action": "open"})
            return "opened"
        with pytest.raises(FutureTimeout):
            loop.call_wait(open_gate, timeout=0.2)
        release.set()
        assert loop.call_wait(lambda b: "after", timeout=5) == "after"
        assert ran == []  # the caller answered "busy": the gate must never open after that
        # an item that has started when the time runs out is waited for, not abandoned
        started = threading.Event()

        def slow(b: Batch) -> str:
            started.set()
            release.clear()
            release.wait(0.5)
            return "finished"
        assert loop.call_wait(slow, timeout=0.1) == "finished"
        assert started.is_set()
    finally:
        release.set()
        rig.close()


def test_eviction_is_counted_and_reported_in_one_alarm_event(tmp_path: Path) -> None:
    """A full outbox drops heartbeats first and says so, once per batch, in an alarm-priority
    ``outbox.evicted`` event that is itself kept (room is reserved for alarms)."""
    cfg = OutboxConfig(max_rows=100)
    with StateRig(tmp_path, outbox_cfg=cfg) as rig:
        def burst(b: Batch) -> None:
            b.emit(EventType.TICKET_ISSUED, {"number": "A001"})
            for i in range(150):
                b.emit(EventType.HEARTBEAT, {"i": i})
        rig.run(burst)
        kept = 100 - int(100 * cfg.reserved_fraction)  # rows for everything but alarms
        expected = 151 - kept
        evicted = rig.events("outbox.evicted")
        first = rig.events("ticket.issued")[0]["seq"] + 1  # the heartbeats came after it
        assert [e["data"] for e in evicted] == [{"evicted": {"heartbeat": expected},
                                                 "evicted_total": expected,
                                                 "ranges": [[first, first + expected - 1]]}]
        assert evicted[0]["priority"] == "alarm" and rig.outbox.evicted_total == expected
        assert [e["data"] for e in rig.events("ticket.issued")] == [
            {"number": "A001"}]  # a heartbeat went, not the ticket
        heartbeats = [e["data"]["i"] for e in rig.events("heartbeat")]
        assert heartbeats == list(range(expected, 150))  # the oldest (lowest seq) went first


def test_deferred_work_rides_along_with_the_next_commit(tmp_path: Path) -> None:
    """A deferred item gets no commit of its own: it runs in the transaction of the next item
    posted, before that item's future resolves, and its own future resolves after that commit."""
    with StateRig(tmp_path) as rig:
        loop = rig.loop
        rig.run(lambda b: None)
        commits = loop.commits
        ran: list[int] = []
        deferred = loop.call_deferred(lambda b: ran.append(loop.commits))
        threading.Event().wait(0.3)
        assert ran == [] and loop.commits == commits  # nothing woke the thread for it
        assert rig.run(lambda b: "next") == "next"
        assert ran == [commits]  # it ran inside the next batch ...
        assert loop.commits == commits + 1  # ... which made one commit for both
        assert deferred.result(5) is None


def test_deferred_work_runs_alone_after_a_tick_and_on_stop(tmp_path: Path) -> None:
    rig = StateRig(tmp_path)
    loop = rig.loop
    loop.tick_s = 0.2
    rig.run(lambda b: None)  # the thread now sleeps at most tick_s
    try:
        alone = loop.call_deferred(lambda b: b.emit(EventType.GATE_INPUTS, {"n": 1}))
        assert alone.result(5) is not None  # within a tick, though nothing else came
        assert [e["data"] for e in rig.events("gate.inputs")] == [{"n": 1}]
        loop.tick_s = 30.0
        rig.run(lambda b: None)
        last = loop.call_deferred(lambda b: "at stop")
    finally:
        rig.close()
    assert last.result(0) == "at stop"  # stop() runs what was deferred before it returns


def test_a_failing_deferred_item_is_rolled_back_alone(tmp_path: Path) -> None:
    with StateRig(tmp_path) as rig:
        def bad(b: Batch) -> None:
            b.emit(EventType.GATE_INPUTS, {"bad": True})
            raise ValueError("broken deferred job")
        failed = rig.loop.call_deferred(bad)
        rig.run(lambda b: b.emit(EventType.GATE_INPUTS, {"good": True}))
        with pytest.raises(ValueError, match="broken deferred job"):
            failed.result(5)
        assert [e["data"] for e in rig.events("gate.inputs")] == [{"good": True}]


def test_deferred_work_never_delays_a_gate_opening(tmp_path: Path) -> None:
    """A batch that opens a gate (``Batch.first_out``, as ``Gates.open_zone`` marks it) commits
    without the deferred work, which goes with the next batch instead."""
    with StateRig(tmp_path) as rig:
        ran: list[str] = []
        rig.loop.call_deferred(lambda b: ran.append("deferred"))

        def open_gate(b: Batch) -> None:
            b.first_out.append(threading.Event())
            ran.append("gate")
        rig.run(open_gate)
        assert ran == ["gate"]
        rig.run(lambda b: ran.append("next"))
        assert ran == ["gate", "next", "deferred"]
