"""The barrier kind's relay and input maps (``coils``, ``inputs``) and the rule every input
map keeps: one Modbus read covers all wired inputs, and one input serves one purpose."""

from __future__ import annotations

from pydantic import Field, model_validator

from drivers.settings import Strict

MAX_SPAN = 2000  # inputs one FC02 request can cover


class GateCoils(Strict):
    open: int = Field(default=0, ge=0, le=0xFFFF)
    close: int = Field(default=1, ge=0, le=0xFFFF)
    stop: int = Field(default=2, ge=0, le=0xFFFF)
    lamp: int | None = Field(default=3, ge=0, le=0xFFFF)


def check_unique(inputs: Strict) -> None:
    """Raise ``ValueError`` when wired inputs span more than one read or share a number."""
    dumped = inputs.model_dump()
    # the gate's own inputs first, then the buttons: "input 3 is wired to both fire_alarm and
    # assist_button" names the wiring first, the button that was put on it second
    order = sorted(dumped, key=lambda k: k in ButtonInputs.model_fields)
    named = {k: dumped[k] for k in order if k != "active_low" and isinstance(dumped[k], int)}
    wired = list(named.values())
    if wired and max(wired) - min(wired) >= MAX_SPAN:
        raise ValueError("wired inputs must lie within 2000 numbers of each other "
                         "(one Modbus read covers them all)")
    for n in set(wired):
        users = [k for k, v in named.items() if v == n]
        if len(users) > 1:
            raise ValueError(f"input {n} is wired to both {users[0]} and {users[1]}")


class ButtonInputs(Strict):
    """The visitors' push-buttons, on free inputs of any gate kind's board, and the rule every
    input map keeps (one read, one purpose per input)."""

    assist_button: int | None = Field(
        default=None, ge=0, le=0xFFFF,
        description="visitor's assist button: the next tap gets priority help and an escort")
    escalation_button: int | None = Field(
        default=None, ge=0, le=0xFFFF,
        description="\"办不成事找局长\" button: opens an escalation for the booth")
    active_low: bool = False

    @model_validator(mode="after")
    def _one_read_covers_them(self) -> ButtonInputs:
        check_unique(self)
        return self


class GateInputMap(ButtonInputs):
    """Input numbers of the relay board (or its input board); ``None`` = not wired."""

    open_limit: int | None = Field(default=0, ge=0, le=0xFFFF)
    closed_limit: int | None = Field(default=1, ge=0, le=0xFFFF)
    safety_beam: int | None = Field(default=2, ge=0, le=0xFFFF)
    fire_alarm: int | None = Field(default=3, ge=0, le=0xFFFF)
