"""``[devices.<name>]`` with ``type = "modbus_gate"``: a gate behind a Modbus RTU relay board.

A table chooses two things: ``profile`` (the relay board: ``drivers.modbus_gate.profiles``,
default ``coil``) and ``gate`` (what the board drives: ``drivers.modbus_gate.kinds``, default
``barrier``). Its settings model is ``GateCommon`` plus the profile's and the kind's keys,
one model per combination (``GATE_SETTINGS``); ``ModbusGateConfig`` is the default one, a
coil board under a barrier arm, which every table written before profiles existed still is.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import Field, model_validator

from drivers.modbus_gate.kinds import DEFAULT_KIND, KINDS, BarrierKind
from drivers.modbus_gate.profiles import DEFAULT_PROFILE, PROFILES
from drivers.modbus_gate.profiles.coil import CoilBoardSettings
from drivers.modbus_gate.settings_maps import GateCoils, GateInputMap
from drivers.settings import Axis, SerialSettings, Variants, ZonedSettings

#: The longest idle interval with a visitor button wired: a quick press is down for 150-250 ms,
#: and a press between two reads is never seen.
BUTTON_POLL_MS = 100


class GateCommon(SerialSettings, ZonedSettings):
    type: Literal["modbus_gate"]
    address: int = Field(default=1, ge=1, le=247)
    pulse_ms: int = Field(default=500, ge=50, le=5000)
    response_timeout_ms: int = Field(default=200, ge=20, le=5000)
    poll_interval_ms: int = Field(
        default=100, ge=20, le=5000,
        description="input reads while anything happens: the arm commanded or moving, the "
                    "beam interrupted, a jam or the fire alarm")
    open_poll_interval_ms: int = Field(
        default=200, ge=20, le=5000,
        description="input reads while the arm rests at its open limit (open or held) and "
                    "the beam is clear, waiting for the visitor: a person walking through "
                    "blocks the beam for 300 ms or more; at most BUTTON_POLL_MS with a visitor "
                    "button wired; without an open limit wired, poll_interval_ms applies")
    idle_poll_interval_ms: int = Field(
        default=1000, ge=20, le=5000,
        description="input reads while the arm is down and nothing happens; at most "
                    "BUTTON_POLL_MS with a visitor button wired (a short press lasts ~150 ms); "
                    "swing gates always read at poll_interval_ms (PASS pulses)")
    auto_close_s: float = Field(default=8.0, gt=0, le=600)
    travel_timeout_s: float = Field(default=6.0, gt=0, le=120)
    held_open_alarm_s: float = Field(default=60.0, gt=0, le=3600)

    @property
    def quiet_poll_s(self) -> float:
        """The input read interval while the gate is closed and nothing happens."""
        return self._capped_for_buttons(self.idle_poll_interval_ms)

    @property
    def open_poll_s(self) -> float:
        """The input read interval while the arm rests open and the beam is clear."""
        return self._capped_for_buttons(self.open_poll_interval_ms)

    def _capped_for_buttons(self, ms: int) -> float:
        inputs = getattr(self, "inputs", None)
        if inputs is not None and (getattr(inputs, "assist_button", None) is not None
                                   or getattr(inputs, "escalation_button", None) is not None):
            ms = min(ms, BUTTON_POLL_MS)
        return ms / 1000

    @model_validator(mode="after")
    def _inputs_reachable(self) -> GateCommon:
        """A register-family relay board has no inputs: wired ones need the input board."""
        inputs = getattr(self, "inputs", None)
        wired = inputs is not None and any(
            isinstance(v, int) for k, v in inputs.model_dump().items() if k != "active_low")
        if (wired and getattr(self, "profile", None) == "r4d3b16"
                and getattr(self, "inputs_address", None) is None):
            raise ValueError("inputs are wired but the R4D3B16 family has no inputs: set "
                             "inputs_address to the N4D3E16 input board's Modbus address")
        return self


class ModbusGateConfig(CoilBoardSettings, BarrierKind, GateCommon):
    """A coil board under a barrier arm: the default, and every table written before
    profiles existed."""


class GateSettings(Protocol):
    """What the gate drivers read of any combination's model (mypy's view of them)."""

    port: str
    baudrate: int
    zone: str
    address: int
    profile: str
    gate: str
    coils: Any
    inputs: Any
    pulse_ms: int
    response_timeout_ms: int
    poll_interval_ms: int
    idle_poll_interval_ms: int
    open_poll_interval_ms: int
    auto_close_s: float
    travel_timeout_s: float
    held_open_alarm_s: float

    @property
    def quiet_poll_s(self) -> float: ...
    @property
    def open_poll_s(self) -> float: ...


GATE_SETTINGS = Variants(GateCommon, [
    Axis("profile", DEFAULT_PROFILE, {name: mixin for name, (mixin, _) in PROFILES.items()}),
    Axis("gate", DEFAULT_KIND, KINDS),
], suffix="Gate", prebuilt={Variants.tag_of((DEFAULT_PROFILE, DEFAULT_KIND)): ModbusGateConfig})

__all__ = [
    "BUTTON_POLL_MS", "GATE_SETTINGS", "GateCoils", "GateCommon", "GateInputMap",
    "GateSettings", "ModbusGateConfig",
]
