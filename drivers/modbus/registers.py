"""Modbus RTU requests beyond coil writes and input reads: pure functions of bytes.

The register family of relay boards (R4D3B16 / R4D8B08, N4D3E16 input boards) and the
generic profile need FC06 write single register (the board echoes the request), FC03 / FC04
register reads and FC01 coil reads; ``drivers.modbus.rtu`` frames their replies
(``reply_length``) and checks CRCs and exception replies the same way as for the rest.
"""

from __future__ import annotations

from drivers.modbus.rtu import (
    MAX_READ_BITS,
    EchoMismatch,
    FrameError,
    FunctionCode,
    _raise_if_exception,
    append_crc,
    strip_crc,
)

MAX_READ_REGISTERS = 125  # Modbus application protocol limit for FC03/FC04
BIT_READS = (FunctionCode.READ_COILS, FunctionCode.READ_DISCRETE_INPUTS)
REGISTER_READS = (FunctionCode.READ_HOLDING_REGISTERS, FunctionCode.READ_INPUT_REGISTERS)


def _u16(name: str, value: int) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} {value} out of range 0..65535")
    return value.to_bytes(2, "big")


def read_request(address: int, function: FunctionCode, start: int, count: int) -> bytes:
    """FC01 / FC02 (``count`` bits) or FC03 / FC04 (``count`` registers) from ``start``."""
    if not 1 <= address <= 247:
        raise ValueError(f"slave address {address} out of range 1..247")
    if function not in (*BIT_READS, *REGISTER_READS):
        raise ValueError(f"{function!r} is not a read")
    limit = MAX_READ_BITS if function in BIT_READS else MAX_READ_REGISTERS
    if not 1 <= count <= limit:
        raise ValueError(f"count {count} out of range 1..{limit}")
    return append_crc(bytes((address, function)) + _u16("start", start) + _u16("count", count))


def write_register_request(address: int, register: int, value: int) -> bytes:
    """FC06 write single register."""
    if not 0 <= address <= 247:
        raise ValueError(f"slave address {address} out of range 0..247")
    return append_crc(bytes((address, FunctionCode.WRITE_SINGLE_REGISTER))
                      + _u16("register", register) + _u16("value", value))


def check_write_register_reply(request: bytes, reply: bytes) -> None:
    """Accept only the exact echo of an FC06 request (CRC included)."""
    body = strip_crc(reply)
    _raise_if_exception(request, body)
    if reply != request:
        raise EchoMismatch(f"echo {reply.hex(' ')} for request {request.hex(' ')}")


def _data(request: bytes, reply: bytes) -> bytes:
    body = strip_crc(reply)
    if body[0] != request[0]:
        raise FrameError(f"reply from address {body[0]} to a request for {request[0]}")
    _raise_if_exception(request, body)
    if body[1] != request[1]:
        raise FrameError(f"reply function {body[1]:#04x} to a request {request[1]:#04x}")
    data = body[3:]
    if len(body) < 3 or body[2] != len(data):
        raise FrameError(f"byte count {body[2] if len(body) > 2 else '-'} for {len(data)}")
    return data


def parse_read_bits_reply(request: bytes, reply: bytes) -> tuple[bool, ...]:
    """FC01 / FC02 reply: the states, first requested bit first (bit 0 of the first byte)."""
    count = int.from_bytes(request[4:6], "big")
    data = _data(request, reply)
    if len(data) != (count + 7) // 8:
        raise FrameError(f"{len(data)} data bytes for {count} bits")
    return tuple(bool(data[i // 8] >> (i % 8) & 1) for i in range(count))


def parse_read_registers_reply(request: bytes, reply: bytes) -> tuple[int, ...]:
    """FC03 / FC04 reply: the register values, big-endian words."""
    count = int.from_bytes(request[4:6], "big")
    data = _data(request, reply)
    if len(data) != 2 * count:
        raise FrameError(f"{len(data)} data bytes for {count} registers")
    return tuple(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))


def read_reply(address: int, function: FunctionCode, payload: bytes) -> bytes:
    """The slave's side of any read (tests and the simulators): byte count + payload."""
    return append_crc(bytes((address, function, len(payload))) + payload)


__all__ = ["BIT_READS", "MAX_READ_REGISTERS", "REGISTER_READS", "check_write_register_reply",
           "parse_read_bits_reply", "parse_read_registers_reply", "read_reply", "read_request",
           "write_register_request"]
