"""``profile = "generic"``: any Modbus relay board, function codes and addresses configured.

For boards no other profile knows. Relays: ``write = "coil"`` (FC05 on ``relay_base`` + n,
FF00 / 0000) or ``"register"`` (FC06 on ``relay_base`` + n, ``on_value`` / ``off_value``),
echo checked either way. Inputs on ``inputs_address`` (default: the board itself):
``read = "discrete_inputs"`` (FC02) or ``"coils"`` (FC01), bit ``input_base`` + n; or
``"holding_registers"`` (FC03) / ``"input_registers"`` (FC04) with ``input_layout``
``"bitmap"`` (input n = bit n % 16 of register ``input_base`` + n // 16) or
``"registers"`` (register ``input_base`` + n, active when not 0). Pulses are host-timed:
a generic board's timer, if it has one, is not known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from drivers.modbus.registers import check_write_register_reply, write_register_request
from drivers.modbus.rtu import CoilValue, FunctionCode, check_write_coil_reply, write_coil_request
from drivers.modbus_gate.profiles.base import (
    Frame,
    InputParser,
    RelayProtocol,
    bit_read,
    bitmap_read,
    register_read,
)
from drivers.settings import Strict

_READS = {"discrete_inputs": FunctionCode.READ_DISCRETE_INPUTS,
          "coils": FunctionCode.READ_COILS,
          "holding_registers": FunctionCode.READ_HOLDING_REGISTERS,
          "input_registers": FunctionCode.READ_INPUT_REGISTERS}


class GenericBoardSettings(Strict):
    profile: Literal["generic"]
    write: Literal["coil", "register"] = "coil"
    relay_base: int = Field(default=0, ge=0, le=0xFFFF, description="address of relay 0")
    on_value: int = Field(default=1, ge=0, le=0xFFFF, description="write = register: on")
    off_value: int = Field(default=0, ge=0, le=0xFFFF, description="write = register: off")
    read: Literal["discrete_inputs", "coils", "holding_registers", "input_registers"] = (
        "discrete_inputs")
    input_base: int = Field(default=0, ge=0, le=0xFFFF, description="address of input 0")
    input_layout: Literal["bits", "bitmap", "registers"] = Field(
        default="bits", description="bits for FC01/FC02; bitmap or registers for FC03/FC04")
    inputs_address: int | None = Field(default=None, ge=1, le=247,
                                       description="input board's address; default the board")

    @model_validator(mode="after")
    def _layout_fits_the_read(self) -> GenericBoardSettings:
        bits = self.read in ("discrete_inputs", "coils")
        if bits != (self.input_layout == "bits"):
            raise ValueError(f"input_layout {self.input_layout!r} does not go with read "
                             f"{self.read!r}: bits for discrete_inputs/coils, bitmap or "
                             "registers for holding_registers/input_registers")
        return self


class GenericBoard(RelayProtocol):
    def switch(self, relay: int, on: bool) -> Frame:
        cfg = self.config
        address = cfg.relay_base + relay
        if cfg.write == "coil":
            value = CoilValue.ON if on else CoilValue.OFF
            return write_coil_request(self.address, address, value), check_write_coil_reply
        return (write_register_request(self.address, address,
                                       cfg.on_value if on else cfg.off_value),
                check_write_register_reply)

    def read(self, numbers: Sequence[int]) -> tuple[bytes, InputParser]:
        cfg = self.config
        address = cfg.inputs_address or self.address
        function = _READS[cfg.read]
        if function in (FunctionCode.READ_COILS, FunctionCode.READ_DISCRETE_INPUTS):
            return bit_read(address, function, cfg.input_base, numbers)
        if cfg.input_layout == "registers":
            return register_read(address, function, cfg.input_base, numbers)
        return bitmap_read(address, function, cfg.input_base, numbers)
