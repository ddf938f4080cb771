"""Visitor push-buttons: the edge rules as a table, then the assist and escalation buttons
wired to a relay board's inputs, read by ModbusGate from RelayBoardSim over a real pty."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from drivers.base import ButtonKind, ButtonPressed, GateInputs, Observation
from drivers.modbus_gate.buttons import ButtonEdges
from drivers.modbus_gate.driver import ModbusGate
from drivers.modbus_gate.settings import GateInputMap
from drivers.sim.relay_board import RelayBoardSim
from tests.support import polling
from tests.support.devices import gate_config as config

A, E = ButtonKind.ASSIST, ButtonKind.ESCALATION
pump = partial(polling.pump, step=0.02)

# (samples as (time s, assist down, escalation down), presses counted at each sample)
EDGE_CASES = {
    "press and release": ([(0, 0, 0), (1, 1, 0), (1.1, 0, 0)], [[], [A], []]),
    "held down counts once": ([(0, 0, 0), (1, 1, 0), (2, 1, 0), (9, 1, 0)], [[], [A], [], []]),
    "down at the first sample is not a press": ([(0, 1, 1), (1, 1, 1)], [[], []]),
    "...but its next press is": ([(0, 1, 0), (1, 0, 0), (3, 1, 0)], [[], [], [A]]),
    "bounce within the rearm time": ([(0, 0, 0), (1, 1, 0), (1.2, 0, 0), (1.4, 1, 0)],
                                     [[], [A], [], []]),
    "second press after the rearm time": ([(0, 0, 0), (1, 1, 0), (1.5, 0, 0), (2.0, 1, 0)],
                                          [[], [A], [], [A]]),
    "both buttons at once": ([(0, 0, 0), (1, 1, 1)], [[], [A, E]]),
    "each button rearms on its own": ([(0, 0, 0), (1, 1, 0), (1.2, 0, 1)], [[], [A], [E]]),
}


@pytest.mark.parametrize("samples,want", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_button_edges(samples: list[tuple[float, int, int]], want: list[list[ButtonKind]]) -> None:
    edges = ButtonEdges(rearm_s=1.0)
    got = [[p.button for p in edges.update({A: bool(a), E: bool(e)}, t)] for t, a, e in samples]
    assert got == want


def test_reset_makes_the_next_sample_a_first_one() -> None:
    edges = ButtonEdges()
    assert edges.update({A: False}, 0) == []
    edges.reset()
    assert edges.update({A: True}, 10) == []  # as after a reconnect with the button stuck


# --------------------------------------------------------------------------- on the wire

WIRED = GateInputMap(assist_button=4, escalation_button=5)


@pytest.fixture
def board() -> Iterator[RelayBoardSim]:
    with RelayBoardSim(travel_s=0.1, inputs=WIRED) as sim:
        yield sim


def presses(out: list[Observation]) -> list[ButtonKind]:
    return [o.button for o in out if isinstance(o, ButtonPressed)]


def hold(board: RelayBoardSim, gate: ModbusGate, button: ButtonKind,
         seconds: float) -> list[Observation]:
    board.set_button(button, True)
    out = pump(gate, seconds)
    board.set_button(button, False)
    return out + pump(gate, 0.1)


def test_a_press_of_each_button_is_one_observation(board: RelayBoardSim) -> None:
    with ModbusGate("g", config(board.port, inputs=WIRED)) as gate:
        out = pump(gate, 0.1)
        assert presses(out) == [] and GateInputs(False, True, False, False) in out
        assert presses(hold(board, gate, A, 0.1)) == [A]
        assert presses(hold(board, gate, E, 0.5)) == [E]  # held over 20 polls: still one
        out = pump(gate, 1.0) + hold(board, gate, A, 0.1)  # past the rearm time
        # the buttons are not gate inputs: no gate.inputs change for them
        assert presses(out) == [A] and not any(isinstance(o, GateInputs) for o in out)


def test_a_button_down_when_the_driver_opens_is_not_a_press(board: RelayBoardSim) -> None:
    board.set_button(E, True)  # stuck, or shorted wiring
    with ModbusGate("g", config(board.port, inputs=WIRED)) as gate:
        assert presses(pump(gate, 0.3)) == []
        board.set_button(E, False)
        pump(gate, 0.1)  # never counted, so nothing to rearm
        assert presses(hold(board, gate, E, 0.1)) == [E]


def test_active_low_buttons() -> None:
    wired = GateInputMap(assist_button=4, escalation_button=5, active_low=True)
    with RelayBoardSim(travel_s=0.1, inputs=wired) as board, \
            ModbusGate("g", config(board.port, inputs=wired)) as gate:
        assert board.input_bits()[4:6] == [True, True]  # released reads high on the wire
        pump(gate, 0.1)
        assert presses(hold(board, gate, A, 0.1)) == [A]


def test_unwired_buttons_are_never_read(board: RelayBoardSim) -> None:
    with ModbusGate("g", config(board.port)) as gate:  # default map: no buttons
        pump(gate, 0.1)
        assert presses(hold(board, gate, A, 0.1)) == []


def test_one_input_cannot_be_two_things() -> None:
    with pytest.raises(ValueError, match="input 3 is wired to both fire_alarm and assist_button"):
        GateInputMap(assist_button=3)
