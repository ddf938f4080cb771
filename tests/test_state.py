"""The state loop's call_wait: a caller that gave up is never acted on later."""

from __future__ import annotations

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
