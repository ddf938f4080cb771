"""``profile = "coil"`` (the default): a plain Modbus coil board.

FC05 write single coil switches relay n (coil n, FF00 on / 0000 off; the board echoes the
request), FC02 read discrete inputs reads input n. Pulses are host-timed, unless
``vendor_pulse`` (kept for configs written before profiles: the same as
``profile = "waveshare_v2"``'s flash).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from drivers.modbus.rtu import (
    CoilValue,
    FunctionCode,
    check_write_coil_reply,
    flash_request,
    write_coil_request,
)
from drivers.modbus_gate.profiles.base import Frame, InputParser, RelayProtocol, bit_read
from drivers.settings import Strict

FLASH_UNIT_S = 0.1


class CoilBoardSettings(Strict):
    profile: Literal["coil"] = "coil"
    vendor_pulse: bool = Field(
        default=False, description="Waveshare FC05 0x02xx flash command (board-timed): "
        "prefer profile = \"waveshare_v2\"")


class CoilBoard(RelayProtocol):
    def __init__(self, config: CoilBoardSettings) -> None:
        super().__init__(config)
        self.board_timed = bool(getattr(config, "vendor_pulse", False))

    def switch(self, relay: int, on: bool) -> Frame:
        value = CoilValue.ON if on else CoilValue.OFF
        return write_coil_request(self.address, relay, value), check_write_coil_reply

    def pulse(self, relay: int, pulse_ms: int) -> tuple[Frame, float] | None:
        if not self.board_timed or relay > 0xFF:
            return None
        return flash(self.address, relay, pulse_ms)

    def read(self, numbers: Sequence[int]) -> tuple[bytes, InputParser]:
        return bit_read(self.address, FunctionCode.READ_DISCRETE_INPUTS, 0, numbers)


def flash(address: int, relay: int, pulse_ms: int) -> tuple[Frame, float]:
    """Waveshare's flash-on: relay closes for ``pulse_ms`` rounded to 100 ms (at least one)."""
    request = flash_request(address, relay, pulse_ms)
    units = int.from_bytes(request[4:6], "big")
    return (request, check_write_coil_reply), units * FLASH_UNIT_S
