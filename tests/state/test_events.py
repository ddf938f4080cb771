"""Event ids: unique, sortable, monotonic within the process even when the clock steps back;
and an event keeps the seq the outbox stamped on it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gated.state.events import _CROCKFORD, Event, EventType, _IdGenerator


def _ms_of(event_id: str) -> int:
    return sum(_CROCKFORD.index(c) << (5 * (9 - i)) for i, c in enumerate(event_id[:10]))


def test_ids_are_unique_sorted_and_carry_the_time() -> None:
    gen = _IdGenerator()
    before = int(time.time() * 1000)
    ids = [gen.new() for _ in range(50_000)]
    after = int(time.time() * 1000)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(len(i) == 26 and set(i) <= set(_CROCKFORD) for i in ids)
    assert before <= _ms_of(ids[0]) <= _ms_of(ids[-1]) <= after


def test_ids_stay_monotonic_when_the_clock_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _IdGenerator()
    first = gen.new()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600)  # NTP steps the clock back 1 h
    later = [gen.new() for _ in range(100)]
    assert [first, *later] == sorted([first, *later]) and len(set(later)) == 100
    assert _ms_of(later[-1]) == _ms_of(first)  # held at the last time until the clock is past it


def test_counter_overflow_borrows_the_next_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _IdGenerator()
    gen.new()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 60)  # the clock stays behind the last id
    gen._rand = (1 << 80) - 3  # and this millisecond's 80-bit part is nearly used up
    a, last, b = gen.new(), gen.new(), gen.new()
    assert a < last < b and _ms_of(a) == _ms_of(last) and last.endswith("Z" * 16)
    assert _ms_of(b) == _ms_of(a) + 1 and b.endswith("0" * 16)


@pytest.mark.parametrize(("kind", "priority"), [
    (EventType.HEARTBEAT, "telemetry"), (EventType.TICKET_ISSUED, "normal"),
    (EventType.DEVICE_STATE, "info"), (EventType.ASSIST_REQUEST, "alarm"),
])
def test_envelope_and_default_priority(kind: EventType, priority: str) -> None:
    e = Event.make(kind, {"n": 1})
    env = e.envelope("site", "booth", 3)
    assert (env["type"], env["priority"], env["seq"], env["data"]) == (str(kind), priority, 0,
                                                                        {"n": 1})
    assert env["session"] == 3
    assert e.to_json("site", "booth", 3).encode() == e.to_json_bytes("site", "booth", 3)


def test_the_outbox_stamps_seq_on_the_event_it_is_given(tmp_path: Path) -> None:
    from gated.config import OutboxConfig
    from gated.state.outbox import Outbox, ensure_schema
    from gated.state.store import Store

    store = Store(tmp_path, [ensure_schema])
    store.open()
    try:
        ob = Outbox(store, OutboxConfig(), "s", "b")
        e = Event.make(EventType.TICKET_ISSUED, {"n": 1})
        with store.transaction():
            stored = ob.append(e)
            assert stored is e and e.seq == ob.last_seq > 0
            with pytest.raises(ValueError, match="already has seq"):
                ob.append(e)  # appended twice would be two rows with one id
    finally:
        store.close()
