"""Supervision: failures become device state, reopen with capped backoff, commands expire."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from drivers.base import (
    CardReader,
    CommandDone,
    DependencyMissing,
    DeviceCommand,
    DeviceFault,
    DeviceState,
    DeviceUnavailable,
    Observation,
    UnreadableCard,
)
from drivers.supervisor import Backoff, DeviceRunner, wait_for_state
from tests.support.polling import wait_for


class ScriptedReader(CardReader):
    """A driver whose failures a test scripts: the supervisor is what is under test here."""

    opens = 0
    fail_opens = 0
    plan: list[str] = []

    def __init__(self, name: str) -> None:
        super().__init__(name)

    def open(self) -> None:
        ScriptedReader.opens += 1
        if ScriptedReader.opens <= ScriptedReader.fail_opens:
            raise DeviceUnavailable("/dev/ttyX: no such file")

    def close(self) -> None:
        pass

    def poll(self, timeout: float) -> Sequence[Observation]:
        self.idle(timeout)
        step = ScriptedReader.plan.pop(0) if ScriptedReader.plan else "idle"
        if step == "unplug":
            raise DeviceUnavailable("read failed: device disconnected")
        if step == "fault":
            self.fault = "paper_out"
        if step == "clear":
            self.fault = None
        if step == "card":
            return [UnreadableCard("read_failed")]
        return []

    def execute(self, command: DeviceCommand) -> Sequence[Observation]:
        if command.action == "jam":
            raise DeviceFault("arm did not move", reason="jam")
        if command.action == "bug":
            raise RuntimeError("a driver bug")
        return super().execute(command)


class Recorder:
    def __init__(self) -> None:
        self.obs: list[Observation] = []
        self.states: list[tuple[DeviceState, str]] = []
        self.lock = threading.Lock()

    def on_obs(self, name: str, obs: Observation) -> None:
        with self.lock:
            self.obs.append(obs)

    def on_state(self, name: str, old: DeviceState, new: DeviceState, reason: str) -> None:
        with self.lock:
            self.states.append((new, reason))


def _runner(rec: Recorder) -> DeviceRunner:
    runner = DeviceRunner("reader", lambda: ScriptedReader("reader"),
                          on_observation=rec.on_obs, on_state=rec.on_state,
                          backoff=Backoff(0.01, 0.05))
    runner.POLL_S = 0.05  # one scripted step per poll: keep the script fast
    return runner


def test_reopens_after_failures_and_reports_each_state() -> None:
    ScriptedReader.opens, ScriptedReader.fail_opens = 0, 3
    ScriptedReader.plan = ["card", "unplug"]
    rec = Recorder()
    r = _runner(rec)
    r.start()
    try:
        assert wait_for_state(r, DeviceState.READY, 5)
        deadline = time.monotonic() + 5
        while ScriptedReader.opens < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert wait_for_state(r, DeviceState.READY, 5)
    finally:
        r.stop()
    states = [s for s, _ in rec.states]
    assert states[0] == DeviceState.OFFLINE and "no such file" in rec.states[0][1]
    assert DeviceState.READY in states
    assert any("disconnected" in reason for _, reason in rec.states)
    assert any(isinstance(o, UnreadableCard) for o in rec.obs)
    assert ScriptedReader.opens >= 5


def test_fault_is_degraded_until_cleared() -> None:
    ScriptedReader.opens, ScriptedReader.fail_opens = 0, 0
    ScriptedReader.plan = ["fault", "idle", "clear"]
    rec = Recorder()
    r = _runner(rec)
    r.start()
    try:
        deadline = time.monotonic() + 5
        while ScriptedReader.plan and time.monotonic() < deadline:
            time.sleep(0.01)
        assert wait_for_state(r, DeviceState.READY, 5)
    finally:
        r.stop()
    assert (DeviceState.DEGRADED, "paper_out") in rec.states
    assert ScriptedReader.opens == 1  # a fault keeps the link: no reopen


def test_failed_command_is_reported_and_expired_commands_refused() -> None:
    ScriptedReader.opens, ScriptedReader.fail_opens = 0, 10**6  # never opens
    ScriptedReader.plan = []
    rec = Recorder()
    r = _runner(rec)
    r.COMMAND_TTL_S = 0.1
    r.start()
    r.send(DeviceCommand("c1", "open"))
    time.sleep(0.3)
    ScriptedReader.fail_opens = 0  # plugged in again
    try:
        assert wait_for_state(r, DeviceState.READY, 5)
        r.send(DeviceCommand("c2", "jam"))
        deadline = time.monotonic() + 5
        while len([o for o in rec.obs if isinstance(o, CommandDone)]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        r.stop()
    done = {o.command_id: o for o in rec.obs if isinstance(o, CommandDone)}
    assert not done["c1"].ok and "expired" in done["c1"].detail  # gate must not open late
    assert not done["c2"].ok and "jam" in done["c2"].detail


def _answer_to(action: str, *, until: Callable[[], bool] = lambda: True,
               settle: float = 0.0) -> tuple[CommandDone, Recorder]:
    """Send ``action`` to a ready reader; its CommandDone once ``until()`` holds too, and
    ``settle`` seconds more in which a wrong reaction (a reopen) would show."""
    ScriptedReader.opens, ScriptedReader.fail_opens = 0, 0
    ScriptedReader.plan = []
    rec = Recorder()
    r = _runner(rec)
    r.start()
    try:
        assert wait_for_state(r, DeviceState.READY, 5)
        r.send(DeviceCommand("c1", action))
        wait_for(lambda: any(isinstance(o, CommandDone) for o in rec.obs) and until(), 5,
                 f"answer to {action}")
        time.sleep(settle)
    finally:
        r.stop()
    return next(o for o in rec.obs if isinstance(o, CommandDone)), rec


def test_driver_bug_in_a_command_still_answers_it_and_reopens() -> None:
    done, _ = _answer_to("bug", until=lambda: ScriptedReader.opens >= 2)
    assert (done.command_id, done.ok) == ("c1", False) and "driver_error" in done.detail


def test_unsupported_command_is_answered_and_the_device_stays_up() -> None:
    done, rec = _answer_to("print", settle=0.2)
    assert (done.ok, done.detail) == (False, "unsupported command 'print'")
    assert ScriptedReader.opens == 1 and [s for s, _ in rec.states] == [DeviceState.READY]


def test_missing_dependency_disables_for_good() -> None:
    rec = Recorder()

    def factory() -> CardReader:
        raise DependencyMissing("pyscard is not installed")

    r = DeviceRunner("badge", factory, on_observation=rec.on_obs, on_state=rec.on_state,
                     backoff=Backoff(0.01, 0.02))
    r.start()
    assert wait_for_state(r, DeviceState.DISABLED, 5)
    r.stop()
    assert "pyscard" in rec.states[-1][1]


def test_backoff_is_capped() -> None:
    b = Backoff(0.5, 30.0)
    assert b.delay(1) <= 0.5
    assert 24.0 <= b.delay(50) <= 30.0


def test_commands_and_stop_wake_a_driver_waiting_in_a_long_poll() -> None:
    """Idle drivers wait up to ``POLL_S`` per poll (cheap at night); a command or a stop must
    not wait for that wait to end."""
    ScriptedReader.opens, ScriptedReader.fail_opens = 0, 0
    ScriptedReader.plan = []
    rec = Recorder()
    r = _runner(rec)
    r.POLL_S = 60.0
    r.start()
    try:
        assert wait_for_state(r, DeviceState.READY, 5)
        time.sleep(0.1)  # now inside a 60 s poll
        r.send(DeviceCommand("c1", "open"))
        wait_for(lambda: any(isinstance(o, CommandDone) for o in rec.obs), 5)
    finally:
        thread = r._thread
        r.stop(timeout=5)
    assert thread is not None and not thread.is_alive()
