"""The state loop: a caller that gave up is never acted on later; evictions are reported."""

from __future__ import annotations

import json
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import pytest

from gated.config import OutboxConfig
from gated.events import EventType
from gated.outbox import Outbox, ensure_schema
from gated.state import Batch, StateLoop
from gated.store import Store


def test_timed_out_call_is_withdrawn_not_run_late(tmp_path: Path) -> None:
    store = Store(tmp_path, [ensure_schema])
    store.open()
    loop = StateLoop(store, Outbox(store, OutboxConfig(), "s", "b"))
    loop.start()
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
        loop.stop()
        store.close()


def test_eviction_is_counted_and_reported_in_one_alarm_event(tmp_path: Path) -> None:
    """A full outbox drops heartbeats first and says so, once per batch, in an alarm-priority
    ``outbox.evicted`` event that is itself kept (room is reserved for alarms)."""
    store = Store(tmp_path, [ensure_schema])
    store.open()
    cfg = OutboxConfig(max_rows=100)
    ob = Outbox(store, cfg, "s", "b")
    loop = StateLoop(store, ob)
    loop.start()
    try:
        def burst(b: Batch) -> None:
            b.emit(EventType.TICKET_ISSUED, {"number": "A001"})
            for i in range(150):
                b.emit(EventType.HEARTBEAT, {"i": i})
        loop.call(burst).result(10)
        kept = 100 - int(100 * cfg.reserved_fraction)  # rows for everything but alarms
        expected = 151 - kept

        def rows(b: Batch) -> list[dict]:  # type: ignore[type-arg]
            return [json.loads(r[0]) for r in b.conn.execute("SELECT body FROM events "
                                                              "ORDER BY seq")]
        events = loop.call(rows).result(5)
        evicted = [e for e in events if e["type"] == "outbox.evicted"]
        assert [e["data"] for e in evicted] == [{"evicted": {"heartbeat": expected},
                                                 "evicted_total": expected}]
        assert evicted[0]["priority"] == "alarm" and ob.evicted_total == expected
        assert [e["data"] for e in events if e["type"] == "ticket.issued"] == [
            {"number": "A001"}]  # a heartbeat went, not the ticket
        heartbeats = [e["data"]["i"] for e in events if e["type"] == "heartbeat"]
        assert heartbeats == list(range(expected, 150))  # the oldest (lowest seq) went first
    finally:
        loop.stop()
        store.close()
