"""SwingGate (a pedestrian swing / flap gate with PASS A / PASS B outputs) against pymodbus
boards: a coil board with its own inputs, and the register family with an N4D3E16."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from drivers.base import CommandDone, DeviceCommand, GateAlarm, GatePassage, Observation
from drivers.modbus_gate.swing import SwingGate
from drivers.registry import driver_class
from tests.support import polling
from tests.support.devices import device_factory, gate_config
from tests.support.modbus_boards import PymodbusBoard

pytestmark = pytest.mark.timeout(60)
pump_until = partial(polling.pump_until, limit=5.0, step=0.02)
LANE = {"pass_a": 0, "pass_b": 1, "fire_alarm": 3}
FAMILIES = {"coil": {}, "r4d3b16": {"profile": "r4d3b16", "inputs_address": 2}}


@pytest.fixture(params=list(FAMILIES))
def board(request: pytest.FixtureRequest) -> Iterator[PymodbusBoard]:
    with PymodbusBoard(request.param, coils={"open": 0, "open_b": 1}, inputs=LANE) as b:
        yield b


@pytest.fixture
def make_lane(board: PymodbusBoard) -> Iterator[Callable[..., SwingGate]]:
    def build(*, fail_open: bool = True, **overrides: object) -> SwingGate:
        values: dict[str, Any] = {
            **FAMILIES[board.family], "gate": "swing", "response_timeout_ms": 200,
            "inputs": {"pass_a": 0, "pass_b": 1, "fire_alarm": 3}, "auto_close_s": 2.0,
            "coils": {"open": 0, "open_b": 1},
            **overrides}
        cfg = gate_config(board.port, **values)
        cls = driver_class("modbus_gate", cfg)
        assert cls is SwingGate  # the kind's own driver, through the registry
        return cls("lane", cfg, fail_open=fail_open)  # type: ignore[call-arg]

    with device_factory(build) as make:
        yield make


def run(gate: SwingGate, action: str, **args: object) -> CommandDone:
    out = list(gate.execute(DeviceCommand(f"c-{action}", action, dict(args))))
    return next(o for o in out if isinstance(o, CommandDone))


def passages(out: list[Observation]) -> list[GatePassage]:
    return [o for o in out if isinstance(o, GatePassage)]


def walk(board: PymodbusBoard, gate: SwingGate, name: str = "pass_a") -> list[Observation]:
    """One person through: the PASS output pulses; what the driver saw meanwhile."""
    board.model.set(name, True)
    out = pump_until(gate, lambda o: isinstance(o, GatePassage))
    board.model.set(name, False)
    return out + polling.pump(gate, 0.1, step=0.02)


def test_each_admitted_visitor_gets_their_own_passage(board: PymodbusBoard,
                                                      make_lane: Callable[..., SwingGate]) -> None:
    gate = make_lane()
    assert run(gate, "open").ok and run(gate, "open").ok  # two taps in a row
    assert board.model.ons(0) == 2  # a pulse each (the second ends the first)
    seen = passages(walk(board, gate)) + passages(walk(board, gate))
    assert seen == [GatePassage(1, 2), GatePassage(2, 2)]  # nobody tailgated


def test_one_more_passage_than_admissions_is_reported(board: PymodbusBoard,
                                                     make_lane: Callable[..., SwingGate]) -> None:
    gate = make_lane()
    run(gate, "open")
    walk(board, gate)
    assert passages(walk(board, gate)) == [GatePassage(2, 1)]  # the core calls it tailgating


def test_a_passage_without_any_admission(board: PymodbusBoard,
                                        make_lane: Callable[..., SwingGate]) -> None:
    gate = make_lane()
    assert passages(walk(board, gate)) == [GatePassage(1, 0)]


def test_exit_is_free_without_an_open_b_relay(make_lane: Callable[..., SwingGate],
                                             board: PymodbusBoard) -> None:
    gate = make_lane(coils={"open": 0})
    board.model.set("pass_b", True)
    assert not passages(polling.pump(gate, 0.3, step=0.02))


def test_direction_b_counts_against_its_own_admissions(board: PymodbusBoard,
                                                      make_lane: Callable[..., SwingGate]) -> None:
    gate = make_lane(coils={"open": 0, "open_b": 1})
    assert run(gate, "open", direction="b").ok
    assert board.model.ons(1) == 1 and board.model.ons(0) == 0
    assert passages(walk(board, gate, "pass_b")) == [GatePassage(1, 1)]


def test_a_pass_output_stuck_is_a_jam(board: PymodbusBoard,
                                     make_lane: Callable[..., SwingGate]) -> None:
    gate = make_lane(travel_timeout_s=0.3)
    board.model.set("pass_a", True)
    pump_until(gate, lambda o: isinstance(o, GateAlarm) and o.kind == "jam")
    assert gate.fault is not None and "pass_a" in gate.fault
    board.model.set("pass_a", False)
    polling.pump(gate, 0.2, step=0.02)
    assert gate.fault is None


def test_fire_holds_the_lane_open_and_refuses_close(board: PymodbusBoard,
                                                   make_lane: Callable[..., SwingGate]) -> None:
    gate = make_lane()
    board.model.set("fire_alarm", True)
    pump_until(gate, lambda o: isinstance(o, GateAlarm) and o.kind == "fire")
    assert board.model.energised() == [0, 1]  # OPEN held closed (a level), both directions
    done = run(gate, "close")
    assert not done.ok and "fire" in done.detail
    board.model.set("fire_alarm", False)
    pump_until(gate, lambda o: isinstance(o, GateAlarm) and o.kind == "fire_cleared")
    assert board.model.energised() == []


def test_fire_in_a_zone_that_does_not_fail_open(board: PymodbusBoard,
                                                make_lane: Callable[..., SwingGate]) -> None:
    gate = make_lane(fail_open=False)
    board.model.set("fire_alarm", True)
    pump_until(gate, lambda o: isinstance(o, GateAlarm) and o.kind == "fire_reported")
    assert board.model.energised() == []


def test_a_short_pass_pulse_on_a_quiet_lane_is_counted(board: PymodbusBoard,
                                                       make_lane: Callable[..., SwingGate]) -> None:
    """A swing gate ignores ``idle_poll_interval_ms``: PASS pulses come whenever somebody goes
    through (here one nobody admitted), and a slow read would miss a short one."""
    gate = make_lane(idle_poll_interval_ms=5000)
    polling.pump(gate, 0.3, step=0.02)  # quiet: no admission, nothing active
    board.model.set("pass_a", True)
    out = polling.pump(gate, 0.15, step=0.02)  # a 150 ms pulse
    board.model.set("pass_a", False)
    out += polling.pump(gate, 0.1, step=0.02)
    assert passages(out) == [GatePassage(1, 0)]
