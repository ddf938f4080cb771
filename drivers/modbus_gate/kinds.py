"""What the relay board drives: ``gate = "barrier" | "contact" | "swing"`` in a gate's table.

Each kind is a settings mixin with its own ``coils`` (relay numbers) and ``inputs`` (input
numbers; ``None`` = not wired) and documented wiring:

- ``barrier`` (default): a barrier arm or sliding gate controller with OPEN / CLOSE / STOP
  dry contacts, open and closed limit switches, a vehicle loop or infrared safety beam, a
  fire alarm contact. Passages are counted from the beam (interrupted, then cleared).
- ``contact``: a controller with only an OPEN contact (CLOSE and STOP optional) and no
  feedback: the driver pulses it and, if a close relay is wired, closes ``auto_close_s``
  after the last admission (each admitted visitor gets the full time). Without a beam the
  driver cannot see a person under the arm: wire the controller's own safety input.
- ``swing``: a pedestrian swing or flap gate controller (the usual thing at a government
  door) with an OPEN input per direction and PASS A / PASS B outputs that pulse once per
  person through. The controller closes by itself and guards its lane with its own
  sensors; the driver counts passages from the PASS pulses (``drivers.modbus_gate.swing``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from drivers.modbus_gate.settings_maps import ButtonInputs, GateCoils, GateInputMap
from drivers.settings import Strict

_Input = Field(default=None, ge=0, le=0xFFFF)


class BarrierKind(Strict):
    gate: Literal["barrier"] = "barrier"
    coils: GateCoils = GateCoils()
    inputs: GateInputMap = GateInputMap()


class ContactCoils(Strict):
    open: int = Field(default=0, ge=0, le=0xFFFF)
    close: int | None = Field(default=None, ge=0, le=0xFFFF)
    stop: int | None = Field(default=None, ge=0, le=0xFFFF)
    lamp: int | None = Field(default=None, ge=0, le=0xFFFF)


class ContactInputs(ButtonInputs):
    fire_alarm: int | None = _Input


class ContactKind(Strict):
    gate: Literal["contact"]
    coils: ContactCoils = ContactCoils()
    inputs: ContactInputs = ContactInputs()


class SwingCoils(Strict):
    open: int = Field(default=0, ge=0, le=0xFFFF, description="OPEN A: entry direction")
    open_b: int | None = Field(default=None, ge=0, le=0xFFFF,
                               description="OPEN B: exit direction (unwired: exit is free)")
    lamp: int | None = Field(default=None, ge=0, le=0xFFFF)


class SwingInputs(ButtonInputs):
    pass_a: int | None = Field(default=0, ge=0, le=0xFFFF, description="PASS A output")
    pass_b: int | None = Field(default=None, ge=0, le=0xFFFF, description="PASS B output")
    fire_alarm: int | None = _Input
    alarm: int | None = Field(default=None, ge=0, le=0xFFFF,
                              description="the controller's fault / intrusion output")


class SwingKind(Strict):
    driver: ClassVar[str | None] = "drivers.modbus_gate.swing:SwingGate"
    gate: Literal["swing"]
    coils: SwingCoils = SwingCoils()
    inputs: SwingInputs = SwingInputs()


DEFAULT_KIND = "barrier"
KINDS: dict[str, type[Strict]] = {"barrier": BarrierKind, "contact": ContactKind,
                                  "swing": SwingKind}
