"""The Modbus relay board under a gate: its contacts and its inputs, whatever the board.

The gate drivers (``ModbusGate``: the arm's model; ``SwingGate``: a pedestrian lane) drive
the board through this class, which owns what belongs to the board itself:
- Frames built once per relay at construction from the board's profile
  (``drivers.modbus_gate.profiles``), so a decision's first byte leaves at once.
- Relay pulses: board-timed where the profile has a timer (Waveshare flash, the register
  family's delayed-off: a host that dies mid-pulse leaves no relay energised), else
  host-timed: the "off" is due ``pulse_ms`` later and sent by ``end_due_pulses`` from the
  driver's poll. Never two command contacts closed at once: a new pulse first ends any
  other, ours or the board's.
- One read covering every wired input: the gate's own (limits, beam, fire; PASS outputs)
  and the visitors' buttons as presses (``drivers/modbus_gate/buttons.py``).

Every method that talks to the board goes through ``send`` (the driver's retrying,
link-aware transact) and may raise what it raises.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from drivers.base import ButtonKind, ButtonPressed, DeviceError, GateInputs
from drivers.modbus_gate.buttons import ButtonEdges
from drivers.modbus_gate.profiles import protocol_for
from drivers.modbus_gate.profiles.base import Frame, Send

INPUTS = ("open_limit", "closed_limit", "safety_beam", "fire_alarm")
BUTTONS = {"assist_button": ButtonKind.ASSIST, "escalation_button": ButtonKind.ESCALATION}


class Relay(enum.StrEnum):
    OPEN = "open"
    OPEN_B = "open_b"  # a swing gate's second direction
    CLOSE = "close"
    STOP = "stop"
    LAMP = "lamp"


COMMAND_RELAYS = (Relay.OPEN, Relay.OPEN_B, Relay.CLOSE, Relay.STOP)


class GateBoard:
    def __init__(self, config: Any, send: Send, inputs: Sequence[str] = INPUTS) -> None:
        self.config = config
        self._send = send
        self.protocol = protocol_for(config)
        coils = config.coils.model_dump()
        self.relays = {Relay(name): n for name, n in coils.items() if n is not None}
        self._on = {r: self.protocol.switch(c, True) for r, c in self.relays.items()}
        self._off = {r: self.protocol.switch(c, False) for r, c in self.relays.items()}
        self._board_pulse: dict[Relay, tuple[Frame, float]] = {}
        for relay, number in self.relays.items():
            if relay is not Relay.LAMP and (pulse := self.protocol.pulse(
                    number, config.pulse_ms)) is not None:
                self._board_pulse[relay] = pulse
        setattr(self.protocol, "relays", tuple(self.relays.values()))  # noqa: B010
        #: gate input name -> input number, for the wired ones
        self.wired = {f: n for f in inputs
                      if (n := getattr(config.inputs, f, None)) is not None}
        self._buttons = {b: n for f, b in BUTTONS.items()
                         if (n := getattr(config.inputs, f, None)) is not None}
        numbers = sorted({*self.wired.values(), *self._buttons.values()})
        self._read = self.protocol.read(numbers) if numbers else None
        self._edges = ButtonEdges()
        self._pulse_off: dict[Relay, float] = {}  # relay -> when our "off" is due
        self._board_until: dict[Relay, float] = {}  # relay -> when the board's pulse ends

    @property
    def can_read(self) -> bool:
        return self._read is not None

    @property
    def board_timed(self) -> bool:
        """Command pulses are timed by the board (a crash mid-pulse leaves nothing on)."""
        return bool(self._board_pulse)

    @property
    def next_pulse_end(self) -> float | None:
        return min(self._pulse_off.values(), default=None)

    def forget(self) -> None:
        """A fresh start (the driver opens): no pulses running, no button seen."""
        self._pulse_off.clear()
        self._board_until.clear()
        self._edges.reset()

    def setup(self) -> list[str]:
        """The board's one-time writes after (re)connecting; what was changed."""
        return self.protocol.setup(self._send)

    def switch(self, relay: Relay, on: bool) -> None:
        request, parse = (self._on if on else self._off)[relay]
        self._send(request, parse)

    def all_off(self) -> None:
        """Every command relay off: a pulse cut short by a crash or a lost link must not
        stay closed."""
        for relay in COMMAND_RELAYS:
            if relay in self.relays:
                self.switch(relay, False)

    def pulse(self, relay: Relay, now: float, *, separate: bool = False) -> None:
        """Pulse ``relay``; with ``separate``, a pulse of it still running is ended first, so
        the controller sees a new edge (a swing gate counts its OPEN pulses)."""
        if separate and (relay in self._pulse_off or self._board_until.get(relay, 0) > now):
            self._pulse_off.pop(relay, None)
            self._board_until.pop(relay, None)
            self.switch(relay, False)
        for other in [r for r in self._pulse_off if r != relay]:
            del self._pulse_off[other]
            self.switch(other, False)
        for other, until in [(r, t) for r, t in self._board_until.items() if r != relay]:
            del self._board_until[other]
            if until > now:
                self.switch(other, False)
        board = self._board_pulse.get(relay)
        if board is not None:
            (request, parse), seconds = board
            self._board_until[relay] = now + seconds
            self._send(request, parse)
            return
        self._pulse_off[relay] = now + self.config.pulse_ms / 1000  # set first: ends even if
        self.switch(relay, True)  # the echo comes back garbled

    def end_due_pulses(self, now: float) -> None:
        for relay, off_at in list(self._pulse_off.items()):
            if now >= off_at:
                del self._pulse_off[relay]
                self.switch(relay, False)

    def end_pulses(self) -> list[tuple[Relay, DeviceError]]:
        """Switch off every host-timed pulse still running (the driver closes); what could
        not be. Board-timed pulses end by themselves."""
        failed: list[tuple[Relay, DeviceError]] = []
        for relay in list(self._pulse_off):
            try:
                self.switch(relay, False)
            except DeviceError as e:  # closing goes on; the caller logs each
                failed.append((relay, e))
        return failed

    def read_named(self, now: float) -> tuple[dict[str, bool], list[ButtonPressed]]:
        """Every wired input by name (wiring polarity applied) and the button presses since
        the last read (none at the first read after ``forget``: a button already down then
        is not a press); ``now`` is the caller's monotonic time."""
        assert self._read is not None
        request, parse = self._read
        states = self._send(request, parse)
        low = self.config.inputs.active_low
        active = {f: states[n] != low for f, n in self.wired.items()}
        presses = self._edges.update(
            {b: states[n] != low for b, n in self._buttons.items()}, now)
        return active, presses

    def read(self, now: float) -> tuple[GateInputs, list[ButtonPressed]]:
        """A barrier's inputs (unwired ones inactive) and the button presses."""
        active, presses = self.read_named(now)
        return GateInputs(**{f: active.get(f, False) for f in INPUTS}), presses
