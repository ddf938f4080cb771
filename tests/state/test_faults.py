"""A state-thread job that keeps failing becomes an alarm and a problem, and clears on success;
a rolled-back batch hands its sequence numbers out again (no gap)."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import pytest

from gated.state.events import EventType
from gated.state.faults import FaultWatch, job_name
from gated.state.loop import Batch
from tests.support.state_rig import StateRig


def test_fault_watch_table() -> None:
    watch = FaultWatch(after=3)
    assert watch.failed("tick", ValueError("a")) is None
    assert watch.failed("tick", ValueError("b")) is None
    alarm = watch.failed("tick", ValueError("c"))
    assert alarm is not None and alarm["failures"] == 3 and alarm["error"] == "ValueError: c"
    assert watch.failed("tick", ValueError("d")) is None  # raised once, not per failure
    assert [p["failures"] for p in watch.problems()] == [4]
    assert watch.succeeded({"other"}) == []
    (recovered,) = watch.succeeded({"tick"})
    assert recovered["kind"] == "state_job_recovered" and watch.problems() == []
    assert watch.failed("tap", KeyError("x")) is None and watch.succeeded({"tap"}) == []


def test_job_names_tell_jobs_apart() -> None:
    def tick(b: Batch) -> None: ...
    assert job_name(tick).endswith("test_job_names_tell_jobs_apart.<locals>.tick")
    assert job_name(lambda b: None).endswith("<lambda>")


def _post_failing(rig: StateRig) -> Future[object]:
    def broken_tick(b: Batch) -> None:
        b.emit(EventType.HEARTBEAT)  # its seq is handed out again after the rollback
        raise KeyError("no such zone")
    return rig.loop.call(broken_tick)


def test_a_job_failing_again_and_again_is_an_alarm_until_it_succeeds(tmp_path: Path) -> None:
    with StateRig(tmp_path) as rig:
        for _ in range(4):
            with pytest.raises(KeyError):
                _post_failing(rig).result(10)
            rig.run(lambda b: b.emit(EventType.TICKET_ISSUED, {}))  # other jobs still commit
        (problem,) = rig.loop.faults.problems()
        assert problem["job"].endswith("broken_tick") and problem["failures"] == 4
        alarms = [e["data"] for e in rig.events("alarm")]
        assert [a["kind"] for a in alarms] == ["state_job_failing"]
        assert alarms[0]["error"] == "KeyError: 'no such zone'"

        def broken_tick(b: Batch) -> None:  # the same job, mended
            b.emit(EventType.HEARTBEAT)
        broken_tick.__qualname__ = problem["job"]
        rig.run(broken_tick)
        rig.run(lambda b: None)  # the recovery notice goes out with the next batch
        assert rig.loop.faults.problems() == []
        assert [e["data"]["kind"] for e in rig.events("alarm")] == ["state_job_failing",
                                                                    "state_job_recovered"]
        seqs = [e["seq"] for e in rig.events()]
        assert seqs == list(range(1, len(seqs) + 1))  # the rolled-back numbers were reused
