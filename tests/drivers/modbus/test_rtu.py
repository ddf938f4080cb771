"""Table tests of the Modbus RTU codec against the byte-exact frames of PROTOCOLS.md section 4."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import DeviceFault, ProtocolError
from drivers.modbus.registers import parse_read_bits_reply
from drivers.modbus.rtu import (
    CoilValue,
    CrcError,
    EchoMismatch,
    ExceptionCode,
    FrameError,
    ModbusExceptionReply,
    OtherRequest,
    ReadDiscreteInputs,
    WriteCoil,
    append_crc,
    check_write_coil_reply,
    crc16,
    exception_reply,
    flash_request,
    parse_request,
    read_discrete_inputs_reply,
    read_discrete_inputs_request,
    reply_length,
    request_length,
    strip_crc,
    write_coil_request,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# Every frame printed in PROTOCOLS.md section 4, plus replies built from its rules.
DOC_FRAMES = [
    "01 05 00 00 FF 00 8C 3A",  # relay 0 on
    "01 05 00 00 00 00 CD CA",  # relay 0 off
    "01 05 00 01 FF 00 DD FA",  # relay 1 on
    "01 02 00 00 00 08 79 CC",  # read 8 discrete inputs
    "01 05 02 00 00 07 8D B0",  # Waveshare flash relay 0, 700 ms
    "01 85 02 C3 51",  # exception reply to FC05: illegal data address
]


@pytest.mark.parametrize("frame", DOC_FRAMES)
def test_crc_of_documented_frames(frame: str) -> None:
    raw = h(frame)
    assert append_crc(raw[:-2]) == raw
    assert strip_crc(raw) == raw[:-2]


@pytest.mark.parametrize(("data", "crc"), [
    (b"123456789", 0x4B37),  # the CRC catalogue check value of CRC-16/MODBUS
    (b"", 0xFFFF),
    (h("01 05 00 00 FF 00"), 0x3A8C),
])
def test_crc16_check_values(data: bytes, crc: int) -> None:
    assert crc16(data) == crc


@pytest.mark.parametrize(("args", "frame"), [
    ((1, 0, CoilValue.ON), "01 05 00 00 FF 00 8C 3A"),
    ((1, 0, CoilValue.OFF), "01 05 00 00 00 00 CD CA"),
    ((1, 1, CoilValue.ON), "01 05 00 01 FF 00 DD FA"),
])
def test_write_coil_request(args: tuple[int, int, CoilValue], frame: str) -> None:
    assert write_coil_request(*args) == h(frame)


@pytest.mark.parametrize(("relay", "pulse_ms", "frame"), [
    (0, 700, "01 05 02 00 00 07 8D B0"),
    (0, 740, "01 05 02 00 00 07 8D B0"),  # rounded to 100 ms units
    (0, 20, append_crc(h("01 05 02 00 00 01")).hex()),  # never zero: at least one unit
    (3, 500, append_crc(h("01 05 02 03 00 05")).hex()),
])
def test_flash_request(relay: int, pulse_ms: int, frame: str) -> None:
    assert flash_request(1, relay, pulse_ms) == h(frame)


def test_read_discrete_inputs_request() -> None:
    assert read_discrete_inputs_request(1, 0, 8) == h("01 02 00 00 00 08 79 CC")


@pytest.mark.parametrize("bad", [
    lambda: write_coil_request(0, 0, CoilValue.ON),
    lambda: write_coil_request(248, 0, CoilValue.ON),
    lambda: write_coil_request(1, 0x10000, CoilValue.ON),
    lambda: flash_request(1, 256, 500),
    lambda: read_discrete_inputs_request(1, 0, 0),
    lambda: read_discrete_inputs_request(1, 0, 2001),
])
def test_request_arguments_out_of_range(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()  # type: ignore[operator]


# --------------------------------------------------------------------------- replies

READ8 = h("01 02 00 00 00 08 79 CC")
READ4_FROM_2 = read_discrete_inputs_request(1, 2, 4)
READ10 = read_discrete_inputs_request(1, 0, 10)


@pytest.mark.parametrize(("request_", "reply", "bits"), [
    (READ8, append_crc(h("01 02 01 00")), (False,) * 8),
    (READ8, append_crc(h("01 02 01 05")), (True, False, True) + (False,) * 5),
    (READ8, append_crc(h("01 02 01 80")), (False,) * 7 + (True,)),
    (READ4_FROM_2, append_crc(h("01 02 01 0A")), (False, True, False, True)),
    (READ10, append_crc(h("01 02 02 01 02")), (True,) + (False,) * 8 + (True,)),
])
def test_parse_read_discrete_inputs(request_: bytes, reply: bytes, bits: tuple[bool, ...]) -> None:
    assert parse_read_bits_reply(request_, reply) == bits
    assert reply_length(request_, reply[:3]) == len(reply)


def test_doc_read_reply_example_pads_unused_bits() -> None:
    reply = h("01 02 01 05 61 8B")
    assert append_crc(reply[:-2]) == reply
    assert read_discrete_inputs_reply(1, (True, False, True, False)) == reply


@pytest.mark.parametrize(("request_", "reply", "error"), [
    (READ8, h("01 02 01 05 61 8C"), CrcError),  # CRC off by one bit
    (READ8, append_crc(h("02 02 01 05")), FrameError),  # another slave
    (READ8, append_crc(h("01 01 01 05")), FrameError),  # another function
    (READ8, append_crc(h("01 02 02 05 00")), FrameError),  # byte count for 16 inputs
    (READ8, append_crc(h("01 02")), FrameError),  # no byte count at all
    (READ8, h("01 02 01"), FrameError),  # shorter than any frame
    (READ8, append_crc(h("01 82 02")), ModbusExceptionReply),
    (READ8, append_crc(h("01 82 02 00")), FrameError),  # exception reply of the wrong size
])
def test_read_reply_errors(request_: bytes, reply: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_read_bits_reply(request_, reply)


ON0 = h("01 05 00 00 FF 00 8C 3A")


def test_echo_accepted() -> None:
    check_write_coil_reply(ON0, ON0)
    assert reply_length(ON0, ON0[:2]) == 8


@pytest.mark.parametrize(("reply", "error"), [
    (h("01 05 00 00 00 00 CD CA"), EchoMismatch),  # valid frame, coil left off
    (h("01 05 00 01 FF 00 DD FA"), EchoMismatch),  # valid frame, another relay
    (h("01 05 00 00 FF 00 8C 3B"), CrcError),
    (h("01 85 02 C3 51"), ModbusExceptionReply),
])
def test_echo_errors(reply: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_write_coil_reply(ON0, reply)


@pytest.mark.parametrize(("reply", "code"), [
    (h("01 85 02 C3 51"), ExceptionCode.ILLEGAL_DATA_ADDRESS),
    (exception_reply(1, 5, ExceptionCode.ILLEGAL_DATA_VALUE), ExceptionCode.ILLEGAL_DATA_VALUE),
    (exception_reply(1, 5, ExceptionCode.SERVER_DEVICE_BUSY), ExceptionCode.SERVER_DEVICE_BUSY),
    (append_crc(h("01 85 42")), 0x42),  # a code outside the standard keeps its number
])
def test_exception_reply_is_typed(reply: bytes, code: int) -> None:
    with pytest.raises(ModbusExceptionReply) as info:
        check_write_coil_reply(ON0, reply)
    assert info.value.code == code
    assert info.value.function == 0x05
    assert isinstance(info.value, DeviceFault)
    assert info.value.reason.startswith("modbus_exception_")


def test_exception_reply_matches_document() -> None:
    assert exception_reply(1, 5, ExceptionCode.ILLEGAL_DATA_ADDRESS) == h("01 85 02 C3 51")


@pytest.mark.parametrize(("head", "length"), [
    (h("01"), None),
    (h("01 05"), 8),
    (h("01 85"), 5),
    (h("01 82"), 5),
])
def test_reply_length(head: bytes, length: int | None) -> None:
    request = ON0 if head[1:2] in (b"\x05", b"\x85") else READ8
    assert reply_length(request, head) == length


@pytest.mark.parametrize(("request_", "head"), [
    (ON0, h("02 05")),
    (ON0, h("01 02")),
    (READ8, h("01 02 09")),  # a garbled count must not make the caller wait for 14 bytes
])
def test_reply_length_rejects_foreign_heads(request_: bytes, head: bytes) -> None:
    with pytest.raises(FrameError):
        reply_length(request_, head)


# --------------------------------------------------------------------------- slave side


@pytest.mark.parametrize(("frame", "parsed"), [
    ("01 05 00 00 FF 00 8C 3A", WriteCoil(1, 0, 0xFF00)),
    ("01 05 00 01 FF 00 DD FA", WriteCoil(1, 1, 0xFF00)),
    ("01 05 02 00 00 07 8D B0", WriteCoil(1, 0x0200, 7)),
    ("01 02 00 00 00 08 79 CC", ReadDiscreteInputs(1, 0, 8)),
    (append_crc(h("01 03 00 00 00 01")).hex(), OtherRequest(1, 3)),
])
def test_parse_request(frame: str, parsed: object) -> None:
    assert parse_request(h(frame)) == parsed
    assert request_length(h(frame)[:7]) == 8


def test_parse_request_crc() -> None:
    with pytest.raises(CrcError):
        parse_request(h("01 05 00 00 FF 00 8C 3B"))


@pytest.mark.parametrize(("head", "length"), [
    (h("01"), None),
    (h("01 0F 00 00 00"), None),
    (h("01 0F 00 00 00 0A 02"), 11),
    (h("01 10 00 00 00 02 04"), 13),
])
def test_request_length(head: bytes, length: int | None) -> None:
    assert request_length(head) == length


def test_request_length_unknown_function() -> None:
    with pytest.raises(FrameError):
        request_length(h("01 2B"))


@given(st.lists(st.booleans(), min_size=1, max_size=64), st.integers(0, 100))
def test_inputs_round_trip(bits: list[bool], start: int) -> None:
    request = read_discrete_inputs_request(7, start, len(bits))
    reply = read_discrete_inputs_reply(7, bits)
    assert reply_length(request, reply[:3]) == len(reply)
    assert parse_read_bits_reply(request, reply) == tuple(bits)


@given(st.binary(min_size=0, max_size=40))
def test_garbage_never_escapes_as_another_error(junk: bytes) -> None:
    """Whatever arrives, the master side answers with a typed device error or a result."""
    try:
        parse_read_bits_reply(READ8, junk)
    except (ProtocolError, ModbusExceptionReply):
        pass
    try:
        check_write_coil_reply(ON0, junk)
    except (ProtocolError, ModbusExceptionReply):
        pass
