"""Modbus RTU codec: pure functions of bytes for the relay boards that drive barrier gates.

Only what a relay board needs: FC05 write single coil (the board echoes the request), the
Waveshare-style FC05 "flash" command at coil 0x0200 + relay (value = pulse in units of 100 ms),
FC02 read discrete inputs, and exception replies (function code | 0x80). Both sides are here:
the master side for ``drivers.modbus_gate`` and the slave side for ``drivers.sim.relay_board``, so
the simulator parses requests with the very code whose output it answers.

Every failure is a ``DeviceError`` subclass, so a caller can let it propagate and it becomes
device state: a bad CRC, a truncated or foreign frame or a wrong echo is a ``ProtocolError``;
an exception reply is a ``ModbusExceptionReply`` (a ``DeviceFault``: the link works, the board
refuses, usually because a coil or input number in the config does not exist on the board).

Framing: RTU frames are delimited by silence on the wire, which a host cannot see reliably
behind a USB adapter, so replies are framed by their function code and length fields instead
(``reply_length``), and requests likewise (``request_length``).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.base import DeviceFault, ProtocolError

MAX_READ_BITS = 2000  # Modbus application protocol limit for FC01/FC02
FLASH_BASE = 0x0200  # Waveshare "flash on": coil 0x0200 + relay, value = 100 ms units
FLASH_UNIT_MS = 100
MIN_FRAME = 4  # address, function, CRC (2)


class FunctionCode(enum.IntEnum):
    READ_COILS = 0x01
    READ_DISCRETE_INPUTS = 0x02
    READ_HOLDING_REGISTERS = 0x03
    READ_INPUT_REGISTERS = 0x04
    WRITE_SINGLE_COIL = 0x05
    WRITE_SINGLE_REGISTER = 0x06
    WRITE_MULTIPLE_COILS = 0x0F
    WRITE_MULTIPLE_REGISTERS = 0x10


EXCEPTION_BIT = 0x80


class ExceptionCode(enum.IntEnum):
    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    SERVER_DEVICE_FAILURE = 0x04
    ACKNOWLEDGE = 0x05
    SERVER_DEVICE_BUSY = 0x06
    MEMORY_PARITY_ERROR = 0x08
    GATEWAY_PATH_UNAVAILABLE = 0x0A
    GATEWAY_TARGET_FAILED = 0x0B


class CoilValue(enum.IntEnum):
    """The only two values FC05 accepts for a plain coil write."""

    OFF = 0x0000
    ON = 0xFF00


class CrcError(ProtocolError):
    reason = "crc_error"


class FrameError(ProtocolError):
    """Bytes that cannot be the reply asked for: foreign address, function or length."""

    reason = "bad_frame"


class EchoMismatch(ProtocolError):
    """An FC05 reply that is a valid frame but not the echo of the request."""

    reason = "echo_mismatch"


class ModbusExceptionReply(DeviceFault):
    """The board answered with an exception reply; ``code`` says why."""

    reason = "modbus_exception"

    def __init__(self, function: int, code: ExceptionCode | int) -> None:
        self.function = function
        self.code = code
        name = code.name.lower() if isinstance(code, ExceptionCode) else f"code_{code:02x}"
        super().__init__(f"board refused function {function:#04x}: {name}",
                         reason=f"modbus_exception_{name}")


# --------------------------------------------------------------------------- CRC


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS: init 0xFFFF, reflected polynomial 0xA001. Sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def append_crc(body: bytes) -> bytes:
    return body + crc16(body).to_bytes(2, "little")


def strip_crc(frame: bytes) -> bytes:
    """Check the CRC of a whole frame and return it without the CRC."""
    if len(frame) < MIN_FRAME:
        raise FrameError(f"frame of {len(frame)} bytes is too short")
    body, received = frame[:-2], int.from_bytes(frame[-2:], "little")
    expected = crc16(body)
    if received != expected:
        raise CrcError(f"CRC {received:04x} != computed {expected:04x}")
    return body


def _check_u16(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} {value} out of range 0..65535")


def _check_address(address: int) -> None:
    if not 1 <= address <= 247:
        raise ValueError(f"slave address {address} out of range 1..247")


# --------------------------------------------------------------------------- master side


def write_coil_request(address: int, coil: int, value: CoilValue | int) -> bytes:
    """FC05 request; ``value`` is a raw 16-bit field so vendor commands can use it too."""
    _check_address(address)
    _check_u16("coil", coil)
    _check_u16("value", int(value))
    return append_crc(bytes((address, FunctionCode.WRITE_SINGLE_COIL))
                      + coil.to_bytes(2, "big") + int(value).to_bytes(2, "big"))


def flash_request(address: int, relay: int, pulse_ms: int) -> bytes:
    """Vendor (Waveshare) pulse: relay closes for ``pulse_ms`` rounded to 100 ms, at least 100.

    The board times the pulse itself, so the relay cannot stay closed if the host dies
    between "on" and "off". Boards without this command answer ILLEGAL_DATA_ADDRESS.
    """
    if not 0 <= relay <= 0xFF:
        raise ValueError(f"relay {relay} out of range 0..255 for the flash command")
    units = max(1, min(0xFFFF, round(pulse_ms / FLASH_UNIT_MS)))
    return write_coil_request(address, FLASH_BASE + relay, units)


def read_discrete_inputs_request(address: int, start: int, count: int) -> bytes:
    _check_address(address)
    _check_u16("start", start)
    if not 1 <= count <= MAX_READ_BITS:
        raise ValueError(f"input count {count} out of range 1..{MAX_READ_BITS}")
    return append_crc(bytes((address, FunctionCode.READ_DISCRETE_INPUTS))
                      + start.to_bytes(2, "big") + count.to_bytes(2, "big"))


_BIT_READS = frozenset({FunctionCode.READ_COILS, FunctionCode.READ_DISCRETE_INPUTS})
_READS = _BIT_READS | {FunctionCode.READ_HOLDING_REGISTERS, FunctionCode.READ_INPUT_REGISTERS}


def _bit_bytes(count: int) -> int:
    return (count + 7) // 8


def reply_length(request: bytes, head: bytes) -> int | None:
    """Total length of the reply to ``request`` that starts with ``head``; ``None``: need more.

    Raises ``FrameError`` as soon as the head cannot belong to this request, so a caller
    never waits for bytes that a garbled length field promised.
    """
    if len(head) < 2:
        return None
    address, function = request[0], request[1]
    if head[0] != address:
        raise FrameError(f"reply from address {head[0]} to a request for {address}")
    if head[1] == function | EXCEPTION_BIT:
        return 5
    if head[1] != function:
        raise FrameError(f"reply function {head[1]:#04x} to a request {function:#04x}")
    if function in (FunctionCode.WRITE_SINGLE_COIL, FunctionCode.WRITE_SINGLE_REGISTER):
        return 8
    if function in _READS:
        if len(head) < 3:
            return None
        count = int.from_bytes(request[4:6], "big")
        expected = _bit_bytes(count) if function in _BIT_READS else 2 * count
        if head[2] != expected:
            raise FrameError(f"byte count {head[2]} for {expected} expected")
        return 5 + expected
    raise FrameError(f"no reply framing for function {function:#04x}")


def _raise_if_exception(request: bytes, body: bytes) -> None:
    if body[1] == request[1] | EXCEPTION_BIT:
        if len(body) != 3:
            raise FrameError(f"exception reply of {len(body) + 2} bytes")
        code = body[2]
        known = code in ExceptionCode._value2member_map_
        raise ModbusExceptionReply(request[1], ExceptionCode(code) if known else code)


def check_write_coil_reply(request: bytes, reply: bytes) -> None:
    """Accept only the exact echo of an FC05 request (CRC included)."""
    body = strip_crc(reply)
    _raise_if_exception(request, body)
    if reply != request:
        raise EchoMismatch(f"echo {reply.hex(' ')} for request {request.hex(' ')}")


# --------------------------------------------------------------------------- slave side


@dataclass(frozen=True)
class WriteCoil:
    address: int
    coil: int
    value: int


@dataclass(frozen=True)
class ReadDiscreteInputs:
    address: int
    start: int
    count: int


@dataclass(frozen=True)
class OtherRequest:
    """A well-formed request for a function this codec does not serve."""

    address: int
    function: int


Request = WriteCoil | ReadDiscreteInputs | OtherRequest

_FIXED_8 = frozenset({FunctionCode.READ_COILS, FunctionCode.READ_DISCRETE_INPUTS,
                      FunctionCode.READ_HOLDING_REGISTERS, FunctionCode.READ_INPUT_REGISTERS,
                      FunctionCode.WRITE_SINGLE_COIL, FunctionCode.WRITE_SINGLE_REGISTER})


def request_length(head: bytes) -> int | None:
    """Length of the request starting with ``head``; ``None``: need more bytes.

    Raises ``FrameError`` for a function whose length cannot be known from its header; a
    slave then falls back to framing by silence.
    """
    if len(head) < 2:
        return None
    function = head[1]
    if function in _FIXED_8:
        return 8
    if function in (FunctionCode.WRITE_MULTIPLE_COILS, FunctionCode.WRITE_MULTIPLE_REGISTERS):
        return None if len(head) < 7 else 9 + head[6]
    raise FrameError(f"cannot frame function {function:#04x} by length")


def parse_request(frame: bytes) -> Request:
    body = strip_crc(frame)
    address, function = body[0], body[1]
    if function == FunctionCode.WRITE_SINGLE_COIL and len(body) == 6:
        return WriteCoil(address, int.from_bytes(body[2:4], "big"),
                         int.from_bytes(body[4:6], "big"))
    if function == FunctionCode.READ_DISCRETE_INPUTS and len(body) == 6:
        return ReadDiscreteInputs(address, int.from_bytes(body[2:4], "big"),
                                  int.from_bytes(body[4:6], "big"))
    return OtherRequest(address, function)


def exception_reply(address: int, function: int, code: ExceptionCode) -> bytes:
    return append_crc(bytes((address, (function | EXCEPTION_BIT) & 0xFF, code)))


def read_discrete_inputs_reply(address: int, bits: Sequence[bool]) -> bytes:
    data = bytearray(_bit_bytes(len(bits)))
    for i, bit in enumerate(bits):
        if bit:
            data[i // 8] |= 1 << (i % 8)
    return append_crc(bytes((address, FunctionCode.READ_DISCRETE_INPUTS, len(data))) + data)
