"""Every relay board profile against pymodbus as the board (a Modbus stack that is not ours),
with the coil or register map of its family (tests/support/modbus_boards.py), on a pty.

Per family: pulses (and which are board-timed: the driver never writes the "off"), inputs
(limits through the arm, the beam), passage and the close it triggers, jam; a host that dies
mid-pulse leaves no relay energised on board-timed profiles and leaves it on until the next
open on host-timed ones. Waits are "until, or fail after a generous limit".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from drivers.base import CommandDone, DeviceCommand, GateAlarm, GateInputs, GatePassage, Observation
from drivers.modbus_gate.driver import ModbusGate
from tests.support import polling
from tests.support.devices import device_factory, gate_config
from tests.support.modbus_boards import FLASH_BASE, GENERIC_RELAYS, PymodbusBoard

pytestmark = pytest.mark.timeout(60)

LIMIT_S = 5.0
pump_until = partial(polling.pump_until, limit=LIMIT_S, step=0.02)
wait_for = partial(polling.wait_for, timeout=LIMIT_S)

PROFILES: dict[str, dict[str, Any]] = {
    "coil": {},
    "waveshare_v2": {"profile": "waveshare_v2"},
    "r4d3b16": {"profile": "r4d3b16", "inputs_address": 2},
    "generic": {"profile": "generic", "write": "register", "relay_base": GENERIC_RELAYS,
                "read": "input_registers", "input_base": 200, "input_layout": "registers"},
}
BOARD_TIMED = {"waveshare_v2", "r4d3b16"}


def off_writes(board: PymodbusBoard, relay: int) -> int:
    """How many times the host switched ``relay`` off (not counting the board's timer)."""
    m = board.model
    if board.family in ("coil", "waveshare_v2"):
        return m.writes(5, relay).count(0)
    if board.family == "r4d3b16":
        return m.writes(6, relay + 1).count(0x0200)
    return m.writes(6, GENERIC_RELAYS + relay).count(0)


@pytest.fixture(params=list(PROFILES))
def board(request: pytest.FixtureRequest) -> Iterator[PymodbusBoard]:
    with PymodbusBoard(request.param) as b:
        yield b


@pytest.fixture
def make_gate(board: PymodbusBoard) -> Iterator[Callable[..., ModbusGate]]:
    def build(**overrides: object) -> ModbusGate:
        values = {**PROFILES[board.family], "response_timeout_ms": 200, **overrides}
        return ModbusGate("gate", gate_config(board.port, **values))

    with device_factory(build) as make:
        yield make


def polling_until(gate: Any, pred: Callable[[], bool], what: str) -> list[Observation]:
    """Poll ``gate`` (host-timed pulses end in its polls) until ``pred()``; what it said."""
    out: list[Observation] = []

    def step() -> bool:
        out.extend(gate.poll(0.02))
        return pred()
    wait_for(step, what=what, interval=0)
    return out


def run(gate: Any, action: str, **args: object) -> CommandDone:
    out = list(gate.execute(DeviceCommand(f"c-{action}", action, dict(args))))
    return next(o for o in out if isinstance(o, CommandDone))


def inputs(**want: bool) -> Callable[[Observation], bool]:
    return lambda o: isinstance(o, GateInputs) and all(getattr(o, k) == v
                                                       for k, v in want.items())


def test_open_pass_close_through_the_board(board: PymodbusBoard,
                                           make_gate: Callable[..., ModbusGate]) -> None:
    gate = make_gate(auto_close_s=30, pulse_ms=200)
    assert list(gate.poll(0.1)) == [GateInputs(False, True, False, False)]
    assert run(gate, "open").ok
    pump_until(gate, inputs(open_limit=True))  # the arm rose: the OPEN pulse reached it
    polling_until(gate, lambda: not board.model.energised(), "the OPEN pulse to end")
    board.model.set("safety_beam", True)
    pump_until(gate, inputs(safety_beam=True))
    board.model.set("safety_beam", False)
    out = pump_until(gate, lambda o: isinstance(o, GatePassage))
    assert GatePassage(1, 1) in out
    pump_until(gate, inputs(closed_limit=True))  # the passage sent the arm down
    polling_until(gate, lambda: not board.model.energised(), "the CLOSE pulse to end")
    assert board.model.ons(0) == 1 and board.model.ons(1) == 1
    board_timed = board.family in BOARD_TIMED
    assert gate._board.board_timed is board_timed
    # host-timed: the driver switched OPEN and CLOSE off itself; board-timed: never (only
    # the switch-off every open() does first)
    assert off_writes(board, 0) == (1 if board_timed else 2)
    assert off_writes(board, 1) == (1 if board_timed else 2)


def test_jammed_arm_is_reported(board: PymodbusBoard,
                                make_gate: Callable[..., ModbusGate]) -> None:
    gate = make_gate(pulse_ms=100)
    board.model.arm.jammed = True
    assert run(gate, "open").ok
    out = pump_until(gate, lambda o: isinstance(o, GateAlarm) and o.kind == "jam")
    assert gate.fault is not None and gate.fault.startswith("jam")
    assert not any(inputs(open_limit=True)(o) for o in out)


def test_a_host_dying_mid_pulse(board: PymodbusBoard,
                                make_gate: Callable[..., ModbusGate]) -> None:
    """The driver sends the pulse and is never heard of again (no poll, no close: SIGKILL)."""
    gate = make_gate(pulse_ms=200)
    assert run(gate, "open").ok
    wait_for(lambda: 0 in board.model.energised(), what="the OPEN relay to close")
    gate._link.close()  # the process is gone: its port closes, nothing more is sent
    if board.family in BOARD_TIMED:
        wait_for(lambda: not board.model.energised(), what="the board to end its own pulse")
    else:  # nobody is left to switch it off: still on well past pulse_ms ...
        assert not polling.holds_within(lambda: not board.model.energised(), 1.0)
        make_gate()  # ... until a driver opens again, which switches command relays off
        assert not board.model.energised()


def test_board_timed_pulse_lengths_are_the_boards(board: PymodbusBoard,
                                                  make_gate: Callable[..., ModbusGate]) -> None:
    """What the driver asks of each board: 100 ms flash units, whole delayed-off seconds."""
    gate = make_gate(pulse_ms=1250)
    assert run(gate, "open").ok
    if board.family == "waveshare_v2":
        assert board.model.writes(5, FLASH_BASE) == [12]  # 1.25 s as 100 ms units
    elif board.family == "r4d3b16":
        assert board.model.writes(6, 1)[-1] == 0x0602  # delayed-off, 2 s: rounded up
    else:
        assert board.model.writes(5 if board.family == "coil" else 6,
                                  0 if board.family == "coil" else GENERIC_RELAYS)[-1] in (
                                      0xFF00, 1, True)


def test_waveshare_linkage_is_turned_off_at_open() -> None:
    """A (D) board shipped with its inputs driving its relays: left so, the open-limit input
    would hold the OPEN relay closed. open() sets the gate's relays to normal mode."""
    with PymodbusBoard("waveshare_v2", linkage=True) as board:
        board.model.arm.force_open(0.0)  # the arm is up: open limit (input 0) active
        polling.wait_for(lambda: 0 in board.model.energised(), what="linkage to drive relay 0")
        gate = ModbusGate("gate", gate_config(board.port, profile="waveshare_v2",
                                              response_timeout_ms=200))
        try:
            gate.open()
            assert board.model.modes[:4] == [0, 0, 0, 0]  # open, close, stop, lamp
            assert board.model.modes[4:] == [1, 1, 1, 1]  # relays the gate does not use
            assert not polling.holds_within(lambda: 0 in board.model.energised(), 0.3)
        finally:
            gate.close()


def test_keep_board_modes_leaves_them() -> None:
    with PymodbusBoard("waveshare_v2", linkage=True) as board:
        gate = ModbusGate("gate", gate_config(board.port, profile="waveshare_v2",
                                              keep_board_modes=True, response_timeout_ms=200))
        try:
            gate.open()
            assert board.model.modes == [1] * 8
        finally:
            gate.close()


def test_contact_gate_closes_after_the_last_admission() -> None:
    """No feedback at all: each admitted visitor gets the whole auto_close_s, counted from
    their own admission; a controller without a close relay closes by itself."""
    with PymodbusBoard("coil", inputs={}) as board:
        gate = ModbusGate("gate", gate_config(board.port, gate="contact",
                                              coils={"open": 0, "close": 1},
                                              response_timeout_ms=200, auto_close_s=0.6))
        try:
            gate.open()
            assert run(gate, "open").ok
            polling.pump(gate, 0.3)
            assert run(gate, "open").ok  # the second visitor, 0.3 s later
            second = polling.time.monotonic()
            polling_until(gate, lambda: board.model.ons(1) == 1, "the CLOSE pulse")
            closed_at = board.model.pulses(1)[0][0] if board.model.pulses(1) else \
                polling.time.monotonic()
            assert closed_at - second >= 0.6 - 0.05  # not the first admission's timer
            assert board.model.ons(0) == 2
        finally:
            gate.close()
        no_close = ModbusGate("gate2", gate_config(board.port, gate="contact",
                                                   response_timeout_ms=200))
        try:
            no_close.open()
            done = run(no_close, "close")
            assert not done.ok and "closes itself" in done.detail
        finally:
            no_close.close()
