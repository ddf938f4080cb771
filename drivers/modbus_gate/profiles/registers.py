"""``profile = "r4d3b16"``: the R4D3B16 / R4D8B08 register family and N4D3E16 input boards.

These boards have no coils: relay channel c (1-based; ``coils`` number n drives channel
n + 1) is holding register c, written with FC06 whose high byte is the command and low byte
its argument: 0x01 close the relay (the family calls it "open"), 0x02 release, 0x03 toggle,
0x04 latch, 0x05 momentary (1 s), 0x06 delay: closed now, released after the low byte in
whole seconds. FC03 on register c reads 1 (closed) or 0. Pulses use the delay command, so
the board times them, in whole seconds: ``pulse_ms`` is rounded up to the next second (1 s
at least, 255 s at most).

The relay board has no inputs. Limit switches, beam and fire go to an N4D3E16 input board
on the same RS-485 line at ``inputs_address``: its 16 inputs are the bits of holding
register 0x00C0 (input n = bit n, IN1 = bit 0), read with one FC03.
Sources: docs/PROTOCOLS-hardware.md (open-source drivers; no vendor manual was reachable).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from drivers.modbus.registers import (
    check_write_register_reply,
    parse_read_registers_reply,
    read_request,
    write_register_request,
)
from drivers.modbus.rtu import FunctionCode
from drivers.modbus_gate.profiles.base import (
    Frame,
    InputParser,
    RelayProtocol,
    Send,
    bitmap_read,
)
from drivers.settings import Strict

INPUT_BITMAP_REGISTER = 0x00C0
MAX_DELAY_S = 255


class Command(enum.IntEnum):
    """High byte of the value written to a channel's register."""

    CLOSE = 0x01  # the vendor's "open": the relay contact closes
    RELEASE = 0x02
    TOGGLE = 0x03
    LATCH = 0x04
    MOMENTARY = 0x05
    DELAY = 0x06


def command_value(command: Command, argument: int = 0) -> int:
    if not 0 <= argument <= 0xFF:
        raise ValueError(f"argument {argument} out of range 0..255")
    return command << 8 | argument


class RegisterBoardSettings(Strict):
    profile: Literal["r4d3b16"]
    inputs_address: int | None = Field(
        default=None, ge=1, le=247,
        description="Modbus address of the N4D3E16 input board on the same line; "
        "required when any input is wired")


class RegisterBoard(RelayProtocol):
    board_timed = True

    def switch(self, relay: int, on: bool) -> Frame:
        value = command_value(Command.CLOSE if on else Command.RELEASE)
        return (write_register_request(self.address, relay + 1, value),
                check_write_register_reply)

    def pulse(self, relay: int, pulse_ms: int) -> tuple[Frame, float] | None:
        seconds = min(MAX_DELAY_S, max(1, math.ceil(pulse_ms / 1000)))
        request = write_register_request(self.address, relay + 1,
                                         command_value(Command.DELAY, seconds))
        return (request, check_write_register_reply), float(seconds)

    def read(self, numbers: Sequence[int]) -> tuple[bytes, InputParser]:
        address = self.config.inputs_address
        if address is None:
            raise ValueError("inputs are wired but inputs_address is not set")
        return bitmap_read(address, FunctionCode.READ_HOLDING_REGISTERS,
                           INPUT_BITMAP_REGISTER, numbers)

    def identify(self, send: Send) -> dict[str, Any]:
        request = read_request(self.address, FunctionCode.READ_HOLDING_REGISTERS, 1, 1)
        (state,) = send(request, parse_read_registers_reply)
        return {"channel_1": "closed" if state else "open"}
