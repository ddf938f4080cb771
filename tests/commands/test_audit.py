"""Refused commands are audited per burst: the first at once, the rest summed per window."""

from __future__ import annotations

from gated.commands.audit import RefusalAudit


def test_a_flood_becomes_two_events_per_window_and_the_counts_add_up() -> None:
    now = [100.0]
    audit = RefusalAudit(window_s=10.0, clock=lambda: now[0])
    first = audit.note("unsigned", "mqtt", "open_gate")
    assert first == {"command": "open_gate", "source": "mqtt", "reason": "unsigned", "count": 1}
    for i in range(499):
        now[0] += 0.01
        assert audit.note("unsigned", "mqtt", "open_gate" if i % 2 else "x" * 100) is None
    assert audit.due() == []  # the window is still open
    now[0] = 110.5
    (summary,) = audit.due()
    assert summary["count"] == 499 and summary["reason"] == "unsigned"
    assert summary["commands"] == {"open_gate": 249, "x" * 64: 250}
    assert audit.due() == []  # reported once
    assert audit.note("unsigned", "mqtt", "open_gate") is not None  # a new spell: at once


def test_keys_are_apart_and_a_single_refusal_leaves_no_summary() -> None:
    now = [0.0]
    audit = RefusalAudit(window_s=5.0, clock=lambda: now[0])
    assert audit.note("unsigned", "mqtt", "a") is not None
    assert audit.note("stale", "mqtt", "a") is not None
    assert audit.note("unsigned", "hall", "a") is not None
    now[0] = 6.0
    assert audit.due() == []
