"""Which Modbus slaves answer on a port, which function codes they accept, and what board
that makes them. Read-only: only FC01-FC04 are ever sent, so no relay can switch.

Per slave id (1-16 by default): one FC03 read at 0 finds it (any reply, data or exception,
means a slave is there; silence costs one timeout), then FC01, FC02 and FC04 and the
identification reads of the known families tell the board:
- holding register 0x8000 answered: Waveshare V2 firmware (its version);
- FC02 accepted: a coil board with inputs (Waveshare (D) / IO, or any plain one);
- FC01 and FC02 refused, holding register 1 answered 0 or 1: the R4D3B16 relay family;
- holding register 0x00C0 answered and coils refused: an N4D3E16 input board.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from drivers.base import DeviceError, DeviceTimeout
from drivers.modbus.link import RtuLink
from drivers.modbus.registers import (
    parse_read_bits_reply,
    parse_read_registers_reply,
    read_request,
)
from drivers.modbus.rtu import FunctionCode, ModbusExceptionReply

READS = (FunctionCode.READ_COILS, FunctionCode.READ_DISCRETE_INPUTS,
         FunctionCode.READ_HOLDING_REGISTERS, FunctionCode.READ_INPUT_REGISTERS)


@dataclass(frozen=True)
class Slave:
    address: int
    accepts: tuple[int, ...]  # function codes answered with data
    family: str  # coil, waveshare_v2, r4d3b16, n4d3e16, unknown
    firmware: str = ""


def _read(link: RtuLink, address: int, function: FunctionCode, start: int) -> bool | None:
    """True: data came back; False: an exception reply; None: silence."""
    request = read_request(address, function, start, 1)
    parse = (parse_read_bits_reply if function in READS[:2] else parse_read_registers_reply)
    try:
        link.transact(request, parse)
        return True
    except ModbusExceptionReply:
        return False
    except DeviceTimeout:
        return None
    except DeviceError:
        return False  # a garbled reply is still a slave


def _value(link: RtuLink, address: int, register: int) -> int | None:
    try:
        (value,) = link.transact(read_request(address, FunctionCode.READ_HOLDING_REGISTERS,
                                              register, 1), parse_read_registers_reply)
        return int(value)
    except DeviceError:
        return None


def scan(link: RtuLink, ids: Iterable[int]) -> list[Slave]:
    found = []
    for address in ids:
        first = _read(link, address, FunctionCode.READ_HOLDING_REGISTERS, 0)
        if first is None:
            first = _read(link, address, FunctionCode.READ_DISCRETE_INPUTS, 0)
            if first is None:
                continue
        answers = {fc: _read(link, address, fc, 0) for fc in READS}
        accepts = tuple(int(fc) for fc, ok in answers.items() if ok)
        version = _value(link, address, 0x8000)
        if version is not None:
            found.append(Slave(address, accepts, "waveshare_v2", f"v{version / 100:.2f}"))
        elif FunctionCode.READ_DISCRETE_INPUTS in accepts:
            found.append(Slave(address, accepts, "coil"))
        elif not answers[FunctionCode.READ_COILS] and _value(link, address, 0x00C0) is not None \
                and _value(link, address, 1) is None:
            found.append(Slave(address, accepts, "n4d3e16"))
        elif not answers[FunctionCode.READ_COILS] and _value(link, address, 1) in (0, 1):
            found.append(Slave(address, accepts, "r4d3b16"))
        else:
            found.append(Slave(address, accepts, "unknown"))
    return found
