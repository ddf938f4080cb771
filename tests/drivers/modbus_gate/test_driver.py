"""ModbusGate against RelayBoardSim over a real pty: real Modbus RTU bytes both ways.

Times are scaled down (arm travel 0.1 s, polls every 20 ms) so the file stays fast; every wait
is "until something happens, or fail after a generous limit", never a timing assertion.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial

import pytest

from drivers.base import (
    CommandDone,
    DeviceCommand,
    DeviceFault,
    DeviceState,
    DeviceTimeout,
    DeviceUnavailable,
    GateAlarm,
    GateInputs,
    GatePassage,
    Observation,
    ProtocolError,
)
from drivers.modbus.rtu import ExceptionCode, ModbusExceptionReply
from drivers.modbus_gate.driver import ModbusGate
from drivers.modbus_gate.settings import BUTTON_POLL_MS, GateCoils, GateInputMap
from drivers.sim.barrier_arm import Button
from drivers.sim.relay_board import BoardFault, RelayBoardSim
from drivers.supervisor import Backoff, DeviceRunner, wait_for_state
from tests.support import polling
from tests.support.devices import device_factory
from tests.support.devices import gate_config as config

LIMIT_S = 3.0  # give up waiting after this; the events below happen within ~0.5 s
pump = partial(polling.pump, step=0.02)
pump_until = partial(polling.pump_until, limit=LIMIT_S, step=0.02)


@pytest.fixture
def sim() -> Iterator[RelayBoardSim]:
    with RelayBoardSim(travel_s=0.1) as board:
        yield board


@pytest.fixture
def make_gate(sim: RelayBoardSim) -> Iterator[Callable[..., ModbusGate]]:
    def build(*, fail_open: bool = True, **overrides: object) -> ModbusGate:
        return ModbusGate("gate1", config(sim.port, **overrides), fail_open=fail_open)

    with device_factory(build) as make:
        yield make


@pytest.fixture
def gate(make_gate: Callable[..., ModbusGate]) -> ModbusGate:
    return make_gate()


def alarm(kind: str) -> Callable[[Observation], bool]:
    return lambda o: isinstance(o, GateAlarm) and o.kind == kind


def inputs(**want: bool) -> Callable[[Observation], bool]:
    return lambda o: isinstance(o, GateInputs) and all(getattr(o, k) == v
                                                       for k, v in want.items())


def is_open(o: Observation) -> bool:
    return inputs(open_limit=True)(o)


def is_closed(o: Observation) -> bool:
    return inputs(closed_limit=True)(o)


def run(gate: ModbusGate, action: str, **args: object) -> list[Observation]:
    return list(gate.execute(DeviceCommand(f"cmd-{action}", action, dict(args))))


def done(out: list[Observation]) -> CommandDone:
    found = [o for o in out if isinstance(o, CommandDone)]
    assert len(found) == 1, out
    return found[0]


def kinds(out: list[Observation]) -> list[str]:
    return [o.kind for o in out if isinstance(o, GateAlarm)]


# --------------------------------------------------------------------------- normal operation


def test_first_poll_reports_inputs_and_relays_are_switched_off(
        sim: RelayBoardSim, gate: ModbusGate) -> None:
    assert list(gate.poll(0.05)) == [GateInputs(False, True, False, False)]
    assert sim.relays[:3] == [False, False, False]


def test_open_pulses_the_open_relay_then_auto_closes(sim: RelayBoardSim, gate: ModbusGate) -> None:
    assert done(run(gate, "open")).ok
    assert sim.relays[0]  # the contact is closed now and released by poll()
    pump_until(gate, is_open)
    assert not sim.relays[0]
    assert [(relay, on) for _, relay, on in list(sim.relay_log)[:2]] == [(0, True), (0, False)]
    assert sim.presses(Button.CLOSE) == 0
    out = pump_until(gate, is_closed)  # auto_close_s later, nobody in the beam
    assert sim.presses(Button.CLOSE) == 1
    assert not any(isinstance(o, GateAlarm) for o in out)


def test_passage_closes_before_the_timer(sim: RelayBoardSim,
                                         make_gate: Callable[..., ModbusGate]) -> None:
    gate = make_gate(auto_close_s=60)
    run(gate, "open")
    pump_until(gate, is_open)
    sim.set_beam(True)
    pump_until(gate, inputs(safety_beam=True))
    assert sim.presses(Button.CLOSE) == 0
    sim.set_beam(False)
    out = pump_until(gate, lambda o: isinstance(o, GatePassage))
    assert GatePassage(1) in out
    pump_until(gate, is_closed)
    assert sim.presses(Button.CLOSE) == 1


@pytest.mark.parametrize("visitors", [2, 5])
def test_each_admitted_visitor_gets_through_before_the_arm_comes_down(
        sim: RelayBoardSim, make_gate: Callable[..., ModbusGate], visitors: int) -> None:
    """Visitor 1 is in the beam when the next ones tap and are admitted: the gate closes only
    after the last of them has passed, not when the first clears the beam."""
    gate = make_gate(auto_close_s=60)
    assert done(run(gate, "open")).ok
    pump_until(gate, is_open)
    sim.set_beam(True)  # visitor 1 walks in
    pump_until(gate, inputs(safety_beam=True))
    for _ in range(visitors - 1):  # the others tap while the first is in the beam
        assert done(run(gate, "open")).ok
    for n in range(1, visitors + 1):
        if n > 1:
            sim.set_beam(True)
            pump_until(gate, inputs(safety_beam=True))
        sim.set_beam(False)
        out = pump_until(gate, lambda o: isinstance(o, GatePassage))
        assert GatePassage(n, visitors) in out
        if n < visitors:  # nobody may be shut out: the arm stays up
            assert sim.presses(Button.CLOSE) == 0 and sim.position() == 1.0
    pump_until(gate, is_closed)
    assert sim.presses(Button.CLOSE) == 1


def test_the_pass_timeout_runs_from_the_last_admission(
        sim: RelayBoardSim, make_gate: Callable[..., ModbusGate]) -> None:
    gate = make_gate(auto_close_s=0.6)
    run(gate, "open")
    pump_until(gate, is_open)
    started = time.monotonic()
    pump(gate, 0.4)
    run(gate, "open")  # a second visitor, 0.4 s later: the timer starts again
    pump_until(gate, is_closed)
    assert time.monotonic() - started >= 0.9
    assert sim.presses(Button.CLOSE) == 1


def test_beam_while_closing_reverses_and_counts_a_second_passage(
        sim: RelayBoardSim, make_gate: Callable[..., ModbusGate]) -> None:
    sim.arm.travel_s = 0.4  # slow enough to step into the beam while the arm comes down
    gate = make_gate(auto_close_s=60, travel_timeout_s=1.5)
    run(gate, "open")
    pump_until(gate, is_open)
    sim.set_beam(True)
    pump_until(gate, inputs(safety_beam=True))
    sim.set_beam(False)
    pump_until(gate, lambda o: o == GatePassage(1))
    pump_until(gate, inputs(open_limit=False))  # arm on its way down
    sim.set_beam(True)  # a tailgater
    out = pump_until(gate, alarm("close_refused_safety"))
    assert "reversed" in [o for o in out if isinstance(o, GateAlarm)][-1].detail
    assert sim.presses(Button.OPEN) == 2
    sim.set_beam(False)
    pump_until(gate, lambda o: o == GatePassage(2))
    pump_until(gate, is_closed)


def test_reversal_with_vendor_flash_never_closes_two_contacts(
        sim: RelayBoardSim, make_gate: Callable[..., ModbusGate]) -> None:
    """The board times its own flash; a reversal while the CLOSE flash runs must end it
    before OPEN flashes (both contacts closed at once is a motor short on many boards)."""
    sim.arm.travel_s = 0.4
    gate = make_gate(vendor_pulse=True, pulse_ms=400, auto_close_s=60, travel_timeout_s=1.5)
    run(gate, "open")
    pump_until(gate, is_open)
    sim.set_beam(True)
    pump_until(gate, inputs(safety_beam=True))
    sim.set_beam(False)
    pump_until(gate, lambda o: o == GatePassage(1))  # closes after the passage
    pump_until(gate, inputs(open_limit=False))  # on its way down, the close flash still on
    sim.set_beam(True)  # a tailgater
    pump_until(gate, alarm("close_refused_safety"))
    assert sim.presses(Button.OPEN) == 2
    sim.set_beam(False)
    on: set[int] = set()
    coils = GateCoils()
    for _, relay, state in sim.relay_log:
        (on.add if state else on.discard)(relay)
        assert not {coils.open, coils.close} <= on, list(sim.relay_log)


def test_close_refused_while_beam_interrupted(sim: RelayBoardSim, gate: ModbusGate) -> None:
    run(gate, "open", hold=True)
    pump_until(gate, is_open)
    sim.set_beam(True)  # not yet polled: close must read the inputs itself
    out = run(gate, "close")
    assert not done(out).ok
    assert "close_refused_safety" in kinds(out)
    assert sim.presses(Button.CLOSE) == 0


def test_auto_close_waits_for_the_beam(sim: RelayBoardSim, gate: ModbusGate) -> None:
    sim.set_beam(True)  # someone stands in the beam before the gate opens
    run(gate, "open")
    pump_until(gate, is_open)
    pump(gate, 0.6)  # past auto_close_s
    assert sim.presses(Button.CLOSE) == 0
    sim.set_beam(False)
    pump_until(gate, is_closed)
    assert sim.presses(Button.CLOSE) == 1


def test_stop_freezes_the_arm_without_a_jam_alarm(sim: RelayBoardSim,
                                                  make_gate: Callable[..., ModbusGate]) -> None:
    sim.arm.travel_s = 0.5
    gate = make_gate(auto_close_s=60)
    run(gate, "open")
    pump_until(gate, inputs(closed_limit=False))
    assert done(run(gate, "stop")).ok
    out = pump(gate, 0.7)
    assert 0.0 < sim.position() < 1.0
    assert kinds(out) == []


def test_lamp_relay(sim: RelayBoardSim, gate: ModbusGate,
                    make_gate: Callable[..., ModbusGate]) -> None:
    assert done(run(gate, "lamp", on=True)).ok
    assert sim.relays[3]
    assert done(run(gate, "lamp", on=False)).ok
    assert not sim.relays[3]
    assert not done(run(gate, "lamp", on="yes")).ok
    unwired = make_gate(coils=GateCoils(lamp=None))
    assert "no lamp" in done(run(unwired, "lamp", on=True)).detail


def test_hold_open_suppresses_auto_close_until_release(sim: RelayBoardSim,
                                                       gate: ModbusGate) -> None:
    run(gate, "hold_open")
    pump_until(gate, is_open)
    out = pump(gate, 1.0)  # past auto_close_s and held_open_alarm_s
    assert sim.presses(Button.CLOSE) == 0
    assert kinds(out) == []
    assert done(run(gate, "release")).ok
    pump_until(gate, is_closed)


def test_unknown_command_is_refused_not_raised(gate: ModbusGate) -> None:
    assert "unsupported" in done(run(gate, "levitate")).detail


def test_active_low_wiring() -> None:
    with RelayBoardSim(travel_s=0.1, inputs=GateInputMap(active_low=True)) as board:
        board.set_beam(True)
        assert board.input_bits()[:4] == [True, False, False, True]  # inverted on the wire
        gate = ModbusGate("g", config(board.port, inputs=GateInputMap(active_low=True)))
        with gate:
            assert list(gate.poll(0.05)) == [GateInputs(False, True, True, False)]


def test_vendor_flash_pulse(sim: RelayBoardSim, make_gate: Callable[..., ModbusGate]) -> None:
    gate = make_gate(vendor_pulse=True, auto_close_s=60)
    run(gate, "open")
    pump_until(gate, is_open)
    pump_until(gate, lambda o: not sim.relays[0], limit=1.0)  # the board ends its own pulse
    assert [(relay, on) for _, relay, on in sim.relay_log] == [(0, True), (0, False)]


# --------------------------------------------------------------------------- alarms


def test_jam_alarm_and_fault_then_recovery(sim: RelayBoardSim, gate: ModbusGate) -> None:
    sim.jam = True
    run(gate, "open")
    out = pump_until(gate, alarm("jam"))
    assert "open limit" in [o for o in out if isinstance(o, GateAlarm)][-1].detail
    assert gate.fault is not None and gate.fault.startswith("jam")
    sim.jam = False
    run(gate, "open")
    pump_until(gate, is_open)
    assert gate.fault is None


def input_reads(sim: RelayBoardSim, since: float) -> int:
    return sum(1 for at, frame in list(sim.request_log) if at > since and frame[1] == 0x02)


def quiet(sim: RelayBoardSim, gate: ModbusGate, seconds: float) -> int:
    """FC02 reads the board saw while ``gate`` was pumped for ``seconds``."""
    start = time.perf_counter()
    pump(gate, seconds)
    return input_reads(sim, start)


def test_a_quiet_gate_reads_slowly_and_a_busy_one_fast(
        sim: RelayBoardSim, make_gate: Callable[..., ModbusGate]) -> None:
    gate = make_gate(idle_poll_interval_ms=400)
    pump_until(gate, is_closed)
    assert quiet(sim, gate, 1.0) <= 4  # every 400 ms (20 ms would be 50)
    run(gate, "open")
    assert quiet(sim, gate, 0.3) >= 8  # arm travelling and up: every 20 ms
    pump_until(gate, is_closed)  # auto-close after 0.4 s
    pump(gate, 0.1)  # the closed limit read, the pulse ended
    assert quiet(sim, gate, 1.0) <= 4


def test_a_quiet_gate_still_sees_the_fire_alarm_and_a_forced_arm(
        sim: RelayBoardSim, make_gate: Callable[..., ModbusGate]) -> None:
    gate = make_gate(idle_poll_interval_ms=300)
    pump_until(gate, is_closed)
    pump(gate, 0.5)
    sim.force_open()
    pump_until(gate, alarm("forced"))
    sim.set_fire(True)
    pump_until(gate, alarm("fire"))


def test_an_open_arm_waiting_for_the_visitor_reads_at_the_open_rate(
        sim: RelayBoardSim, make_gate: Callable[..., ModbusGate]) -> None:
    """Up and still, beam clear: every open_poll_interval_ms; the visitor in the beam makes
    the reads fast again at once, and the passage still closes the arm."""
    gate = make_gate(open_poll_interval_ms=200, auto_close_s=60)
    run(gate, "open")
    pump_until(gate, is_open)
    pump(gate, 0.1)
    assert quiet(sim, gate, 1.0) <= 7  # every 200 ms (20 ms would be 50)
    sim.set_beam(True)
    pump_until(gate, inputs(safety_beam=True))
    assert quiet(sim, gate, 0.3) >= 8  # a visitor in the beam: every 20 ms
    sim.set_beam(False)
    assert GatePassage(1) in pump_until(gate, lambda o: isinstance(o, GatePassage))
    pump_until(gate, is_closed)


def test_an_open_arm_without_an_open_limit_stays_fast(
        sim: RelayBoardSim, make_gate: Callable[..., ModbusGate]) -> None:
    """No open limit wired: nothing says the arm stands still, so it is watched fast."""
    gate = make_gate(open_poll_interval_ms=200, auto_close_s=60,
                     inputs=GateInputMap(open_limit=None))
    run(gate, "open")
    pump(gate, 0.3)
    assert quiet(sim, gate, 0.5) >= 15


def test_visitor_buttons_cap_the_idle_and_open_intervals() -> None:
    plain = config("/dev/null", idle_poll_interval_ms=1000, open_poll_interval_ms=300)
    wired = config("/dev/null", idle_poll_interval_ms=1000, open_poll_interval_ms=300,
                   inputs=GateInputMap(assist_button=4))
    assert (plain.quiet_poll_s, plain.open_poll_s) == (1.0, 0.3)
    assert wired.quiet_poll_s == wired.open_poll_s == BUTTON_POLL_MS / 1000


def test_forced_opening(sim: RelayBoardSim, gate: ModbusGate) -> None:
    gate.poll(0.05)
    sim.force_open()
    pump_until(gate, alarm("forced"))
    pump_until(gate, is_open)
    pump(gate, 0.5)
    assert sim.presses(Button.CLOSE) == 0  # never closes what it did not open


def test_no_forced_alarm_for_a_commanded_opening(gate: ModbusGate) -> None:
    run(gate, "open")
    out = pump_until(gate, is_open)
    assert "forced" not in kinds(out)


def test_held_open_when_the_beam_stays_blocked(sim: RelayBoardSim, gate: ModbusGate) -> None:
    sim.set_beam(True)  # a parked car
    run(gate, "open")
    pump_until(gate, alarm("held_open"))
    assert sim.presses(Button.CLOSE) == 0


def test_fire_opens_holds_refuses_close_and_clears(sim: RelayBoardSim, gate: ModbusGate) -> None:
    gate.poll(0.05)
    sim.set_fire(True)
    pump_until(gate, alarm("fire"))
    pump_until(gate, is_open)
    out = run(gate, "close")
    assert not done(out).ok
    assert "close_refused_fire" in kinds(out)
    out = pump(gate, 1.0)  # past auto_close_s and held_open_alarm_s
    assert sim.presses(Button.CLOSE) == 0
    assert "held_open" not in kinds(out)
    sim.set_fire(False)
    pump_until(gate, alarm("fire_cleared"))
    pump_until(gate, is_closed)


def test_fire_in_a_zone_that_does_not_fail_open(sim: RelayBoardSim,
                                                make_gate: Callable[..., ModbusGate]) -> None:
    gate = make_gate(fail_open=False)
    gate.poll(0.05)
    sim.set_fire(True)
    pump_until(gate, alarm("fire_reported"))
    pump(gate, 0.3)
    assert sim.presses(Button.OPEN) == 0


def test_fire_already_active_when_the_driver_starts(sim: RelayBoardSim,
                                                   make_gate: Callable[..., ModbusGate]) -> None:
    sim.set_fire(True)
    gate = make_gate()
    out = pump_until(gate, is_open)
    assert "fire" in kinds(out)


def test_fresh_driver_leaves_a_found_open_arm_open(sim: RelayBoardSim,
                                                  make_gate: Callable[..., ModbusGate]) -> None:
    sim.force_open()
    while sim.position() < 1.0:
        time.sleep(0.01)
    gate = make_gate()  # as after a reconnect
    out = pump_until(gate, alarm("held_open"))
    assert out[0] == GateInputs(True, False, False, False)
    assert "forced" not in kinds(out)
    assert sim.presses(Button.CLOSE) == 0


# --------------------------------------------------------------------------- bad links


def test_garbage_is_a_protocol_error_and_the_link_recovers(sim: RelayBoardSim,
                                                          gate: ModbusGate) -> None:
    sim.fault = BoardFault.GARBAGE
    with pytest.raises(ProtocolError):
        pump(gate, 0.5)
    sim.fault = BoardFault.NONE
    assert done(run(gate, "open")).ok


def test_silence_is_a_timeout_naming_the_arm_position(sim: RelayBoardSim,
                                                      gate: ModbusGate) -> None:
    gate.poll(0.05)
    sim.fault = BoardFault.SILENT
    with pytest.raises(DeviceTimeout) as info:
        pump(gate, 0.5)
    assert "arm last seen closed" in str(info.value)


def test_unplug_mid_operation(sim: RelayBoardSim, gate: ModbusGate) -> None:
    run(gate, "open")
    pump_until(gate, is_open)
    sim.unplug()
    with pytest.raises(DeviceUnavailable) as info:
        pump(gate, 0.5)
    assert "arm last seen open" in str(info.value)
    gate.close()
    gate.close()  # safe twice
    with pytest.raises(DeviceUnavailable):
        gate.open()  # the pty is gone, like a pulled adapter


def test_exception_reply_for_a_coil_the_board_lacks(sim: RelayBoardSim) -> None:
    gate = ModbusGate("g", config(sim.port, coils=GateCoils(stop=12)))
    with pytest.raises(ModbusExceptionReply) as info:
        gate.open()
    assert isinstance(info.value, DeviceFault)
    assert info.value.code == ExceptionCode.ILLEGAL_DATA_ADDRESS
    gate.close()


def test_supervised_gate_survives_garbage_and_keeps_serving(sim: RelayBoardSim) -> None:
    seen: list[Observation] = []
    states: list[DeviceState] = []
    runner = DeviceRunner(
        "gate1", lambda: ModbusGate("gate1", config(sim.port)),
        on_observation=lambda _n, o: seen.append(o),
        on_state=lambda _n, _old, new, _r: states.append(new),
        backoff=Backoff(0.05, 0.2))
    runner.start()
    try:
        assert wait_for_state(runner, DeviceState.READY, LIMIT_S)
        sim.fault = BoardFault.GARBAGE
        assert wait_for_state(runner, DeviceState.OFFLINE, LIMIT_S)
        sim.fault = BoardFault.NONE
        assert wait_for_state(runner, DeviceState.READY, LIMIT_S)
        runner.send(DeviceCommand("after", "open"))
        end = time.monotonic() + LIMIT_S
        while time.monotonic() < end and CommandDone("after", True) not in seen:
            time.sleep(0.02)
        assert CommandDone("after", True) in seen
        assert DeviceState.DEGRADED in states
    finally:
        runner.stop()
