"""Table tests of the register half of the Modbus codec and of each relay profile's frames,
against byte-exact vectors (sources: docs/PROTOCOLS-hardware.md)."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.base import ProtocolError
from drivers.modbus.registers import (
    check_write_register_reply,
    parse_read_bits_reply,
    parse_read_registers_reply,
    read_reply,
    read_request,
    write_register_request,
)
from drivers.modbus.rtu import (
    EchoMismatch,
    FrameError,
    FunctionCode,
    ModbusExceptionReply,
    append_crc,
    exception_reply,
    reply_length,
)
from drivers.modbus_gate.profiles import protocol_for
from tests.support.devices import gate_config

F = FunctionCode


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_a_published_fc06_frame() -> None:
    """The RYN4 family's factory reset, printed with its CRC in its hardware document."""
    assert append_crc(h("FF 06 00 FB 00 00")) == h("FF 06 00 FB 00 00 ED E5")


@pytest.mark.parametrize(("address", "function", "start", "count", "frame"), [
    (1, F.READ_DISCRETE_INPUTS, 0, 8, "01 02 00 00 00 08 79 CC"),  # PROTOCOLS.md section 4
    (1, F.READ_HOLDING_REGISTERS, 0x00C0, 1, "01 03 00 C0 00 01 84 36"),
    (1, F.READ_HOLDING_REGISTERS, 0x8000, 1, "01 03 80 00 00 01 AD CA"),
    (1, F.READ_COILS, 0x00FF, 1, "01 01 00 FF 00 01 CD FA"),
    (2, F.READ_INPUT_REGISTERS, 200, 4, append_crc(h("02 04 00 C8 00 04")).hex(" ")),
])
def test_read_requests(address: int, function: FunctionCode, start: int, count: int,
                       frame: str) -> None:
    assert read_request(address, function, start, count) == h(frame)


@pytest.mark.parametrize(("args", "error"), [
    ((0, F.READ_COILS, 0, 1), "slave address"),
    ((1, F.WRITE_SINGLE_COIL, 0, 1), "not a read"),
    ((1, F.READ_HOLDING_REGISTERS, 0, 126), "count"),
    ((1, F.READ_COILS, 0x10000, 1), "start"),
])
def test_bad_reads_are_refused(args: tuple[Any, ...], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        read_request(*args)


def test_register_reply_framing_and_parsing() -> None:
    req = read_request(2, F.READ_HOLDING_REGISTERS, 0xC0, 2)
    reply = read_reply(2, F.READ_HOLDING_REGISTERS, h("00 05 80 00"))
    assert reply_length(req, reply[:3]) == len(reply) == 9
    assert parse_read_registers_reply(req, reply) == (5, 0x8000)
    with pytest.raises(FrameError):
        reply_length(req, h("02 03 02"))  # a byte count for one register, two asked
    with pytest.raises(ModbusExceptionReply):
        parse_read_registers_reply(req, exception_reply(2, F.READ_HOLDING_REGISTERS, 2))
    with pytest.raises(ProtocolError):
        parse_read_registers_reply(req, reply[:-1] + bytes((reply[-1] ^ 1,)))


def test_bit_reply_parsing() -> None:
    req = read_request(1, F.READ_COILS, 0, 10)
    assert parse_read_bits_reply(req, read_reply(1, F.READ_COILS, h("05 02"))) == (
        True, False, True, False, False, False, False, False, False, True)
    with pytest.raises(FrameError):
        parse_read_bits_reply(req, read_reply(1, F.READ_COILS, h("05")))


def test_fc06_echo() -> None:
    req = write_register_request(1, 1, 0x0100)
    assert req == append_crc(h("01 06 00 01 01 00"))
    check_write_register_reply(req, req)
    with pytest.raises(EchoMismatch):
        check_write_register_reply(req, write_register_request(1, 1, 0x0200))
    with pytest.raises(ModbusExceptionReply):
        check_write_register_reply(req, exception_reply(1, F.WRITE_SINGLE_REGISTER, 1))


PROFILE_FRAMES = [
    # (profile settings, relay, pulse_ms, switch-on frame body, board pulse body, seconds)
    ({}, 0, 500, "01 05 00 00 FF 00", None, None),
    ({"vendor_pulse": True}, 0, 700, "01 05 00 00 FF 00", "01 05 02 00 00 07", 0.7),
    ({"profile": "waveshare_v2"}, 0, 700, "01 05 00 00 FF 00", "01 05 02 00 00 07", 0.7),
    ({"profile": "waveshare_v2"}, 1, 1250, "01 05 00 01 FF 00", "01 05 02 01 00 0C", 1.2),
    ({"profile": "waveshare_v1"}, 0, 700, "01 05 00 00 FF 00", None, None),
    ({"profile": "r4d3b16", "inputs_address": 2}, 0, 500, "01 06 00 01 01 00",
     "01 06 00 01 06 01", 1.0),
    ({"profile": "r4d3b16", "inputs_address": 2}, 2, 1250, "01 06 00 03 01 00",
     "01 06 00 03 06 02", 2.0),
    ({"profile": "generic", "write": "register", "relay_base": 100, "on_value": 0x0100},
     1, 500, "01 06 00 65 01 00", None, None),
]


@pytest.mark.parametrize(("settings", "relay", "pulse_ms", "on", "pulse", "seconds"),
                         PROFILE_FRAMES)
def test_profile_frames(settings: dict[str, Any], relay: int, pulse_ms: int, on: str,
                        pulse: str | None, seconds: float | None) -> None:
    proto = protocol_for(gate_config("/dev/null", **settings))
    assert proto.switch(relay, True)[0] == append_crc(h(on))
    board = proto.pulse(relay, pulse_ms)
    if pulse is None:
        assert board is None and not proto.board_timed
    else:
        assert board is not None and proto.board_timed
        (frame, _), length = board
        assert frame == append_crc(h(pulse)) and length == pytest.approx(seconds)


@pytest.mark.parametrize(("settings", "numbers", "frame"), [
    ({}, [0, 1, 2, 3], "01 02 00 00 00 04"),
    ({"profile": "r4d3b16", "inputs_address": 2}, [0, 3, 9], "02 03 00 C0 00 01"),
    ({"profile": "generic", "read": "input_registers", "input_base": 200,
      "input_layout": "registers"}, [1, 4], "01 04 00 C9 00 04"),
    ({"profile": "generic", "read": "holding_registers", "input_base": 16,
      "input_layout": "bitmap", "inputs_address": 3}, [2, 17], "03 03 00 10 00 02"),
])
def test_profile_input_reads(settings: dict[str, Any], numbers: list[int], frame: str) -> None:
    request, _ = protocol_for(gate_config("/dev/null", **settings)).read(numbers)
    assert request == append_crc(h(frame))
