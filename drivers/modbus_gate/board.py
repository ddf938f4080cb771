"""The Modbus relay board under a barrier gate: its contacts and its inputs.

``ModbusGate`` (the arm's model: intents, travel, auto-close, fire, alarms) drives the board
through this class, which owns what belongs to the board itself:
- Frames built once per relay at construction, so a decision's first byte leaves at once.
- Relay pulses: the "off" is due ``pulse_ms`` later and sent by ``end_due_pulses`` from the
  driver's poll; with ``vendor_pulse`` the board times its own flash. Never two command
  contacts closed at once: a new pulse first ends any other, ours or the board's flash.
- One FC02 read covering every wired input: the gate's limits, beam and fire alarm, and the
  visitors' buttons as presses (``drivers/buttons.py``).

Every method that talks to the board goes through ``send`` (the driver's retrying,
link-aware transact) and may raise what it raises.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from drivers.base import ButtonKind, ButtonPressed, DeviceError, GateInputs
from drivers.modbus.rtu import (
    CoilValue,
    check_write_coil_reply,
    flash_request,
    parse_read_discrete_inputs_reply,
    read_discrete_inputs_request,
    write_coil_request,
)
from drivers.modbus_gate.buttons import ButtonEdges
from drivers.modbus_gate.settings import ModbusGateConfig

Send = Callable[[bytes, Callable[[bytes, bytes], Any]], Any]

INPUTS = ("open_limit", "closed_limit", "safety_beam", "fire_alarm")
BUTTONS = {"assist_button": ButtonKind.ASSIST, "escalation_button": ButtonKind.ESCALATION}


class Relay(enum.StrEnum):
    OPEN = "open"
    CLOSE = "close"
    STOP = "stop"
    LAMP = "lamp"


class GateBoard:
    def __init__(self, config: ModbusGateConfig, send: Send) -> None:
        self.config = config
        self._send = send
        addr = config.address
        coils = {Relay.OPEN: config.coils.open, Relay.CLOSE: config.coils.close,
                 Relay.STOP: config.coils.stop, Relay.LAMP: config.coils.lamp}
        self.relays = {r: c for r, c in coils.items() if c is not None}
        self._on = {r: write_coil_request(addr, c, CoilValue.ON) for r, c in self.relays.items()}
        self._off = {r: write_coil_request(addr, c, CoilValue.OFF)
                     for r, c in self.relays.items()}
        self._flash = {r: flash_request(addr, c, config.pulse_ms)
                       for r, c in self.relays.items() if c <= 0xFF}
        #: gate input name -> input number, for the wired ones
        self.wired = {f: n for f in INPUTS if (n := getattr(config.inputs, f)) is not None}
        self._buttons = {b: n for f, b in BUTTONS.items()
                         if (n := getattr(config.inputs, f)) is not None}
        numbers = [*self.wired.values(), *self._buttons.values()]
        self._first = min(numbers, default=0)
        self._read_request = (read_discrete_inputs_request(
            addr, self._first, max(numbers) - self._first + 1) if numbers else None)
        self._edges = ButtonEdges()
        self._pulse_off: dict[Relay, float] = {}  # relay -> when our "off" is due
        self._flash_until: dict[Relay, float] = {}  # relay -> when the board's flash ends

    @property
    def can_read(self) -> bool:
        return self._read_request is not None

    @property
    def next_pulse_end(self) -> float | None:
        return min(self._pulse_off.values(), default=None)

    def forget(self) -> None:
        """A fresh start (the driver opens): no pulses running, no button seen."""
        self._pulse_off.clear()
        self._flash_until.clear()
        self._edges.reset()

    def switch(self, relay: Relay, on: bool) -> None:
        self._send((self._on if on else self._off)[relay], check_write_coil_reply)

    def pulse(self, relay: Relay, now: float) -> None:
        for other in [r for r in self._pulse_off if r != relay]:
            del self._pulse_off[other]
            self.switch(other, False)
        for other, until in [(r, t) for r, t in self._flash_until.items() if r != relay]:
            del self._flash_until[other]
            if until > now:
                self.switch(other, False)
        if self.config.vendor_pulse and relay in self._flash:
            self._flash_until[relay] = now + self.config.pulse_ms / 1000
            self._send(self._flash[relay], check_write_coil_reply)
            return
        self._pulse_off[relay] = now + self.config.pulse_ms / 1000  # set first: ends even if
        self.switch(relay, True)  # the echo comes back garbled

    def end_due_pulses(self, now: float) -> None:
        for relay, off_at in list(self._pulse_off.items()):
            if now >= off_at:
                del self._pulse_off[relay]
                self.switch(relay, False)

    def end_pulses(self) -> list[tuple[Relay, DeviceError]]:
        """Switch off every pulse still running (the driver closes); what could not be."""
        failed: list[tuple[Relay, DeviceError]] = []
        for relay in list(self._pulse_off):
            try:
                self.switch(relay, False)
            except DeviceError as e:  # closing goes on; the caller logs each
                failed.append((relay, e))
        return failed

    def read(self, now: float) -> tuple[GateInputs, list[ButtonPressed]]:
        """The gate's inputs and the button presses since the last read (none at the first
        read after ``forget``: a button already down then is not a press); ``now`` is the
        caller's monotonic time."""
        assert self._read_request is not None
        bits = self._send(self._read_request, parse_read_discrete_inputs_reply)
        low = self.config.inputs.active_low
        active = {f: bits[n - self._first] != low for f, n in self.wired.items()}
        presses = self._edges.update(
            {b: bits[n - self._first] != low for b, n in self._buttons.items()}, now)
        return GateInputs(**{f: active.get(f, False) for f in INPUTS}), presses
