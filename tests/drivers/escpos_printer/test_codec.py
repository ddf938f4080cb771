"""ESC/POS codec: builders against the bytes in PROTOCOLS.md section 3, status bytes both ways,
the reply splitter and the tokenizer (round trips and streaming)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import PrinterStatus, ProtocolError
from drivers.escpos_printer.codec import (
    Align,
    Cut,
    Op,
    OpKind,
    QrEcc,
    Reply,
    StatusBits,
    StatusQuery,
    align,
    asb_enable,
    bold,
    chinese,
    cut,
    decode_asb,
    decode_status,
    decode_text,
    encode_asb,
    encode_status,
    feed,
    init,
    line,
    qr,
    size,
    split_replies,
    status_request,
    text,
    tokenize,
)

H = bytes.fromhex


@pytest.mark.parametrize(("built", "expected"), [
    (init(), "1B 40"),
    (chinese(True), "1C 26"),
    (chinese(False), "1C 2E"),
    (align(Align.LEFT), "1B 61 00"),
    (align(Align.CENTER), "1B 61 01"),
    (align(Align.RIGHT), "1B 61 02"),
    (size(1, 1), "1D 21 00"),
    (size(2, 2), "1D 21 11"),
    (size(3, 2), "1D 21 21"),
    (size(8, 8), "1D 21 77"),
    (bold(True), "1B 45 01"),
    (bold(False), "1B 45 00"),
    (feed(3), "1B 64 03"),
    (cut(Cut.FULL), "1D 56 00"),
    (cut(Cut.PARTIAL), "1D 56 01"),
    (status_request(StatusQuery.PRINTER), "10 04 01"),
    (status_request(StatusQuery.PAPER), "10 04 04"),
    (asb_enable(True), "1D 61 0E"),
    (asb_enable(False), "1D 61 00"),
    (text("A007"), "41 30 30 37"),
    (text("号"), "BA C5"),
    (text("办不成事找局长"), "B0 EC B2 BB B3 C9 CA C2 D5 D2 BE D6 B3 A4"),
    (text("€"), "A2 E3"),  # GB18030 two-byte euro
    (text("𠀀"), "95 32 82 36"),  # CJK extension B: four bytes
    (text("𠀀", four_byte=False), "3F"),
    (text("a\x1b@b\tc\x7f"), "61 40 62 63"),  # control characters cannot inject commands
    (line("A"), "41 0A"),
    (qr("abc", 6, QrEcc.L),
     "1D 28 6B 04 00 31 41 32 00  1D 28 6B 03 00 31 43 06  1D 28 6B 03 00 31 45 30"
     "  1D 28 6B 06 00 31 50 30 61 62 63  1D 28 6B 03 00 31 51 30"),
    (qr(b"x", 3, QrEcc.H)[17:25], "1D 28 6B 03 00 31 45 33"),
])
def test_builders(built: bytes, expected: str) -> None:
    assert built == H(expected)


@pytest.mark.parametrize("bad", [lambda: size(0, 1), lambda: size(1, 9), lambda: feed(256),
                                 lambda: qr(""), lambda: qr("a", 0), lambda: qr("a", 17),
                                 lambda: qr(b"1" * 8000)])
def test_builders_refuse_out_of_range(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()  # type: ignore[operator]


def test_qr_store_length_counts_data_plus_three() -> None:
    data = b"u" * 300
    frame = qr(data)
    store = frame[frame.index(b"\x31\x50\x30") - 5:]
    assert store[3] + 256 * store[4] == len(data) + 3


def test_qr_matches_python_escpos() -> None:
    """The reference library builds the same native QR bytes (cross-check, not a dependency)."""
    dummy = pytest.importorskip("escpos.printer").Dummy()
    for module, ecc, ref_ecc in ((6, QrEcc.M, 1), (3, QrEcc.H, 3)):
        dummy.clear()
        dummy.qr("https://pj.example.gov.cn/r?t=T1", native=True, size=module, ec=ref_ecc)
        assert qr("https://pj.example.gov.cn/r?t=T1", module, ecc) == dummy.output


# ---------------------------------------------------------------- status


@pytest.mark.parametrize(("n", "byte", "expected"), [
    (StatusQuery.PRINTER, 0x12, StatusBits(online=True)),
    (StatusQuery.PRINTER, 0x1A, StatusBits(online=False)),
    (StatusQuery.PRINTER, 0x16, StatusBits(online=True)),  # drawer pin: ignored
    (StatusQuery.OFFLINE_CAUSE, 0x12, StatusBits(cover_open=False, feed_button=False,
                                                 stopped_paper_end=False, error=False)),
    (StatusQuery.OFFLINE_CAUSE, 0x16, StatusBits(cover_open=True, feed_button=False,
                                                 stopped_paper_end=False, error=False)),
    (StatusQuery.OFFLINE_CAUSE, 0x72, StatusBits(cover_open=False, feed_button=False,
                                                 stopped_paper_end=True, error=True)),
    (StatusQuery.ERROR_CAUSE, 0x1A, StatusBits(cutter_error=True, unrecoverable=False,
                                               auto_recoverable=False)),
    (StatusQuery.ERROR_CAUSE, 0x52, StatusBits(cutter_error=False, unrecoverable=False,
                                               auto_recoverable=True)),
    (StatusQuery.PAPER, 0x12, StatusBits(paper_near_end=False, paper_out=False)),
    (StatusQuery.PAPER, 0x1E, StatusBits(paper_near_end=True, paper_out=False)),
    (StatusQuery.PAPER, 0x72, StatusBits(paper_near_end=False, paper_out=True)),
    (StatusQuery.PAPER, 0x7E, StatusBits(paper_near_end=True, paper_out=True)),
    (StatusQuery.PAPER, 0x16, StatusBits(paper_near_end=False, paper_out=False)),  # one bit
])
def test_decode_status(n: StatusQuery, byte: int, expected: StatusBits) -> None:
    assert decode_status(n, byte) == expected


@pytest.mark.parametrize("byte", [0x00, 0xFF, 0x10, 0x13, 0x02, 0x92, 0x41, 0x1C])
def test_decode_status_rejects_broken_fixed_bits(byte: int) -> None:
    with pytest.raises(ProtocolError):
        decode_status(StatusQuery.PRINTER, byte)


STATES = [
    StatusBits(online=True, cover_open=False, paper_near_end=False, paper_out=False,
               cutter_error=False),
    StatusBits(online=False, cover_open=True, paper_near_end=False, paper_out=False,
               cutter_error=False),
    StatusBits(online=False, cover_open=False, paper_near_end=True, paper_out=True,
               cutter_error=False),
    StatusBits(online=False, cover_open=False, paper_near_end=False, paper_out=False,
               cutter_error=True),
]


@pytest.mark.parametrize("state", STATES)
def test_status_round_trip_through_four_requests(state: StatusBits) -> None:
    got = StatusBits()
    for n in StatusQuery:
        got = got.merged(decode_status(n, encode_status(n, state)))
    assert got.printer_status() == state.printer_status()


@pytest.mark.parametrize("state", STATES)
def test_asb_round_trip(state: StatusBits) -> None:
    assert decode_asb(encode_asb(state)).printer_status() == state.printer_status()


@pytest.mark.parametrize(("block", "expected"), [
    ("10 00 00 00", PrinterStatus(online=True)),
    ("18 00 00 00", PrinterStatus(online=False)),
    ("38 00 00 00", PrinterStatus(online=False, cover_open=True)),
    ("10 00 03 00", PrinterStatus(online=True, paper_near_end=True)),
    ("18 00 0F 00", PrinterStatus(online=False, paper_near_end=True, paper_out=True)),
    ("18 08 00 00", PrinterStatus(online=False, cutter_error=True)),
])
def test_decode_asb(block: str, expected: PrinterStatus) -> None:
    assert decode_asb(H(block)).printer_status() == expected


@pytest.mark.parametrize("block", ["12 00 00 00", "10 10 00 00", "10 00 80 00", "10 00 00",
                                   "90 00 00 00"])
def test_decode_asb_rejects(block: str) -> None:
    with pytest.raises(ProtocolError):
        decode_asb(H(block))


def test_unknown_fields_count_as_fine_but_a_stop_at_paper_end_is_paper_out() -> None:
    assert StatusBits().printer_status() == PrinterStatus(online=True)
    assert StatusBits(stopped_paper_end=True).printer_status().paper_out


@pytest.mark.parametrize(("stream", "replies", "consumed"), [
    ("12", [Reply("status", H("12"))], 1),
    ("12 1A", [Reply("status", H("12")), Reply("status", H("1A"))], 2),
    ("10 00 03 00 12", [Reply("asb", H("10 00 03 00")), Reply("status", H("12"))], 5),
    ("12 18 00", [Reply("status", H("12"))], 1),  # incomplete ASB waits for more
    ("FF 12", [Reply("garbage", H("FF")), Reply("status", H("12"))], 2),
    ("10 FF 00 00", [Reply("garbage", H("10")), Reply("garbage", H("FF")),
                     Reply("garbage", H("00")), Reply("garbage", H("00"))], 4),
])
def test_split_replies(stream: str, replies: list[Reply], consumed: int) -> None:
    assert split_replies(H(stream)) == (replies, consumed)


# ---------------------------------------------------------------- tokenizer


def test_tokenize_every_builder() -> None:
    stream = (init() + chinese(True) + align(Align.CENTER) + size(2, 2) + bold(True)
              + line("A007") + feed(2) + qr("u", 4, QrEcc.Q) + status_request(StatusQuery.PAPER)
              + asb_enable() + chinese(False) + cut(Cut.PARTIAL) + H("1D 56 42 05"))
    ops, consumed = tokenize(stream)
    assert consumed == len(stream)
    assert ops == [
        Op(OpKind.INIT), Op(OpKind.CHINESE_ON), Op(OpKind.ALIGN, 1), Op(OpKind.SIZE, 0x11),
        Op(OpKind.BOLD, 1), Op(OpKind.TEXT, 0, b"A007"), Op(OpKind.NEWLINE),
        Op(OpKind.FEED, 2), Op(OpKind.QR_MODEL, 0x32, b"\x32\x00"),
        Op(OpKind.QR_MODULE, 4, b"\x04"), Op(OpKind.QR_ECC, 50, b"\x32"),
        Op(OpKind.QR_STORE, 0, b"u"), Op(OpKind.QR_PRINT, 0x30, b"\x30"),
        Op(OpKind.STATUS_REQUEST, 4), Op(OpKind.ASB, 0x0E), Op(OpKind.CHINESE_OFF),
        Op(OpKind.CUT, 1), Op(OpKind.CUT, 0x42, b"\x05")]


@pytest.mark.parametrize(("stream", "ops", "consumed"), [
    ("1B", [], 0),  # incomplete command waits
    ("1B 61", [], 0),
    ("1D 28 6B 06 00 31 50 30 61", [], 0),  # QR data not all there yet
    ("41 42", [], 0),  # text not yet ended
    ("41 42 0A", [Op(OpKind.TEXT, 0, b"AB"), Op(OpKind.NEWLINE)], 3),
    ("1B 7A 41 0A", [Op(OpKind.UNKNOWN, 0, H("1B 7A")), Op(OpKind.TEXT, 0, b"A"),
                     Op(OpKind.NEWLINE)], 4),
    ("07 0D 0A", [Op(OpKind.UNKNOWN, 0, H("07")), Op(OpKind.NEWLINE)], 3),
    ("1D 28 4C 02 00 30 31", [Op(OpKind.UNKNOWN, 0, H("1D 28 4C 02 00 30 31"))], 7),
])
def test_tokenize_streaming(stream: str, ops: list[Op], consumed: int) -> None:
    assert tokenize(H(stream)) == (ops, consumed)


def test_tokenize_final_flushes_text_and_partial_command() -> None:
    assert tokenize(b"AB\x1b", final=True) == (
        [Op(OpKind.TEXT, 0, b"AB"), Op(OpKind.UNKNOWN, 0, b"\x1b")], 3)


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x9FFF,
                                      exclude_categories=("Cs", "Cc")), max_size=40),
       st.integers(1, 30))
def test_chinese_text_survives_any_split(s: str, split: int) -> None:
    stream = chinese(True) + line(s) + cut()
    first, used = tokenize(stream[:split])
    rest, used2 = tokenize(stream[used:], final=True)
    ops = first + rest
    assert used + used2 == len(stream)
    texts = [decode_text(o.data, True) for o in ops if o.kind == OpKind.TEXT]
    assert "".join(texts) == s
    assert ops[-1] == Op(OpKind.CUT, 1)


def test_decode_text_outside_chinese_mode_is_ascii() -> None:
    assert decode_text(text("号A"), False) == "\ufffd\ufffdA"
