"""``[devices.<name>]`` with ``type = "modbus_gate"``: a gate behind a Modbus RTU relay board."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from drivers.settings import SerialSettings, Strict, ZonedSettings


class GateCoils(Strict):
    open: int = Field(default=0, ge=0, le=0xFFFF)
    close: int = Field(default=1, ge=0, le=0xFFFF)
    stop: int = Field(default=2, ge=0, le=0xFFFF)
    lamp: int | None = Field(default=3, ge=0, le=0xFFFF)


class GateInputMap(Strict):
    """Discrete input numbers (FC02) of the relay board; ``None`` = not wired."""

    open_limit: int | None = Field(default=0, ge=0, le=0xFFFF)
    closed_limit: int | None = Field(default=1, ge=0, le=0xFFFF)
    safety_beam: int | None = Field(default=2, ge=0, le=0xFFFF)
    fire_alarm: int | None = Field(default=3, ge=0, le=0xFFFF)
    assist_button: int | None = Field(
        default=None, ge=0, le=0xFFFF,
        description="visitor's assist button: the next tap gets priority help and an escort")
    escalation_button: int | None = Field(
        default=None, ge=0, le=0xFFFF,
        description="\"办不成事找局长\" button: opens an escalation for the booth")
    active_low: bool = False

    @model_validator(mode="after")
    def _one_read_covers_them(self) -> GateInputMap:
        """All wired inputs are read with one FC02 request, which covers 2000 at most; one
        input cannot serve two purposes."""
        named = {k: v for k, v in self.model_dump().items() if k != "active_low"}
        wired = [n for n in named.values() if n is not None]
        if wired and max(wired) - min(wired) >= 2000:
            raise ValueError("wired inputs must lie within 2000 numbers of each other "
                             "(one Modbus read covers them all)")
        for n in set(wired):
            users = [k for k, v in named.items() if v == n]
            if len(users) > 1:
                raise ValueError(f"input {n} is wired to both {users[0]} and {users[1]}")
        return self


#: The longest idle interval with a visitor button wired: a quick press is down for 150-250 ms,
#: and a press between two reads is never seen.
BUTTON_POLL_MS = 100


class ModbusGateConfig(SerialSettings, ZonedSettings):
    type: Literal["modbus_gate"]
    address: int = Field(default=1, ge=1, le=247)
    coils: GateCoils = GateCoils()
    inputs: GateInputMap = GateInputMap()
    pulse_ms: int = Field(default=500, ge=50, le=5000)
    vendor_pulse: bool = Field(default=False, description="Waveshare FC05 0x02xx flash command")
    response_timeout_ms: int = Field(default=200, ge=20, le=5000)
    poll_interval_ms: int = Field(
        default=100, ge=20, le=5000,
        description="input reads while anything happens: the arm moving or up, a pulse, the "
                    "beam interrupted, a hold or the fire alarm")
    idle_poll_interval_ms: int = Field(
        default=1000, ge=20, le=5000,
        description="input reads while the arm is down and nothing happens; capped at "
                    "BUTTON_POLL_MS when a visitor button is wired (a short press lasts ~150 ms)")
    auto_close_s: float = Field(default=8.0, gt=0, le=600)
    travel_timeout_s: float = Field(default=6.0, gt=0, le=120)
    held_open_alarm_s: float = Field(default=60.0, gt=0, le=3600)

    @property
    def quiet_poll_s(self) -> float:
        """The input read interval while the arm is down and nothing happens."""
        ms = self.idle_poll_interval_ms
        if self.inputs.assist_button is not None or self.inputs.escalation_button is not None:
            ms = min(ms, BUTTON_POLL_MS)
        return ms / 1000
