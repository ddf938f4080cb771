"""Waveshare Modbus RTU Relay boards: ``profile = "waveshare_v2"`` and ``"waveshare_v1"``.

Waveshare changed the boards' protocol in September 2021 ("V2 ... fully compatible with
Modbus", same hardware; docs/PROTOCOLS-hardware.md has the sources). Both switch relay n
with FC05 on coil n (FF00 on, 0000 off, echoed) and read inputs n with FC02 (the "(D)" and
"IO 8CH" boards). What differs and what gated uses:

- V2 has the flash command (FC05 on coil 0x0200 + n, value = pulse in 100 ms): the board
  times the pulse, so ``waveshare_v2`` pulses are board-timed. No source shows it on V1
  firmware, so ``waveshare_v1`` pulses are host-timed.
- V2 "(D)" boards keep a control mode per relay in holding register 0x1000 + n (0 normal,
  1 linkage: input n drives relay n, 2 toggle). Boards have been seen shipping in linkage
  mode, where the open-limit input would drive the open relay: ``setup`` reads the modes of
  the gate's relays and writes 0 to every one that is not normal (``keep_board_modes``
  leaves them). A board without the registers answers an exception: nothing to do.
- Identification: V2 answers its firmware version in holding register 0x8000 (value/100);
  V1 reads the relay states with FC01 at 0x00FF, count 1 (its pre-standard form).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from drivers.base import DeviceError
from drivers.modbus.registers import (
    check_write_register_reply,
    parse_read_bits_reply,
    parse_read_registers_reply,
    read_request,
    write_register_request,
)
from drivers.modbus.rtu import FunctionCode
from drivers.modbus_gate.profiles.base import Frame, InputParser, Send, bit_read
from drivers.modbus_gate.profiles.coil import CoilBoard, flash
from drivers.settings import Strict

CONTROL_MODE_BASE = 0x1000
VERSION_REGISTER_V2 = 0x8000
STATUS_COIL_V1 = 0x00FF
MODE_NAMES = {0: "normal", 1: "linkage", 2: "toggle"}


class WaveshareV2Settings(Strict):
    profile: Literal["waveshare_v2"]
    keep_board_modes: bool = Field(
        default=False, description="leave relays in linkage/toggle mode as found "
        "(default: gated sets the gate's relays to normal mode at start)")


class WaveshareV1Settings(Strict):
    profile: Literal["waveshare_v1"]


class WaveshareV2Board(CoilBoard):
    board_timed = True

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.board_timed = True
        self.relays: tuple[int, ...] = ()  # set by GateBoard: the relays the gate uses

    def pulse(self, relay: int, pulse_ms: int) -> tuple[Frame, float] | None:
        return flash(self.address, relay, pulse_ms) if relay <= 0xFF else None

    def setup(self, send: Send) -> list[str]:
        if self.config.keep_board_modes or not self.relays:
            return []
        first, last = min(self.relays), max(self.relays)
        request = read_request(self.address, FunctionCode.READ_HOLDING_REGISTERS,
                               CONTROL_MODE_BASE + first, last - first + 1)
        try:
            modes = send(request, parse_read_registers_reply)
        except DeviceError as e:
            if e.reason.startswith("modbus_exception"):
                return []  # a board without control modes: its inputs drive nothing
            raise
        notes = []
        for relay in self.relays:
            mode = modes[relay - first]
            if mode != 0:
                write = write_register_request(self.address, CONTROL_MODE_BASE + relay, 0)
                send(write, check_write_register_reply)
                notes.append(f"relay {relay}: {MODE_NAMES.get(mode, mode)} mode -> normal")
        return notes

    def identify(self, send: Send) -> dict[str, Any]:
        request = read_request(self.address, FunctionCode.READ_HOLDING_REGISTERS,
                               VERSION_REGISTER_V2, 1)
        (version,) = send(request, parse_read_registers_reply)
        return {"firmware": f"v{version / 100:.2f}"}


class WaveshareV1Board(CoilBoard):
    board_timed = False

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.board_timed = False

    def pulse(self, relay: int, pulse_ms: int) -> tuple[Frame, float] | None:
        return None

    def read(self, numbers: Sequence[int]) -> tuple[bytes, InputParser]:
        return bit_read(self.address, FunctionCode.READ_DISCRETE_INPUTS, 0, numbers)

    def identify(self, send: Send) -> dict[str, Any]:
        request = read_request(self.address, FunctionCode.READ_COILS, STATUS_COIL_V1, 1)
        send(request, parse_read_bits_reply)
        return {"firmware": "v1 (answers the pre-2021 status read)"}
