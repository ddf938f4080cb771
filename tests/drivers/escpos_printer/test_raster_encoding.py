"""Table tests of the raster image (GS v 0) and text encoding codecs: pure bytes."""

from __future__ import annotations

import pytest

from drivers.escpos_printer.codec import OpKind, tokenize
from drivers.escpos_printer.encoding import TextEncoding, decode_text, encode_text
from drivers.escpos_printer.raster import decode_raster, qr_raster, raster

X, _ = True, False


@pytest.mark.parametrize(("rows", "frame"), [
    ([[X]], "1D 76 30 00 01 00 01 00 80"),
    ([[X, _, X, _, X, _, X, _, X]], "1D 76 30 00 02 00 01 00 AA 80"),
    ([[_, X], [X, _]], "1D 76 30 00 01 00 02 00 40 80"),
])
def test_raster_bytes(rows: list[list[bool]], frame: str) -> None:
    data = raster(rows)
    assert data == bytes.fromhex(frame)
    decoded = decode_raster(data)
    assert [r[:len(rows[0])] for r in decoded] == rows
    ops, used = tokenize(data, final=True)
    assert used == len(data) and [o.kind for o in ops] == [OpKind.RASTER]


@pytest.mark.parametrize("rows", [[], [[]], [[X], [X, X]]])
def test_raster_refuses_bad_images(rows: list[list[bool]]) -> None:
    with pytest.raises(ValueError):
        raster(rows)


def test_qr_raster_fits_the_paper() -> None:
    url = "https://pj.example.gov.cn/r?t=01J9ZK3T7Q"
    for dots in (576, 384, 120):
        rows = decode_raster(qr_raster(url, 6, dots))
        assert len(rows[0]) <= dots + 7 and len(rows) <= dots
    with pytest.raises(ValueError, match="does not fit"):
        qr_raster(url, 6, 20)


def test_a_raster_split_across_reads_waits_for_the_rest() -> None:
    data = raster([[X] * 16] * 4)
    ops, used = tokenize(data[:9])
    assert ops == [] and used == 0


@pytest.mark.parametrize(("text", "encoding", "four", "raw"), [
    ("社保", TextEncoding.GB18030, False, "c9 e7 b1 a3"),
    ("社保", TextEncoding.GBK, False, "c9 e7 b1 a3"),
    ("社保", TextEncoding.UTF8, False, "e7 a4 be e4 bf 9d"),
    ("𠀀", TextEncoding.GB18030, True, "95 32 82 36"),  # a four-byte GB18030 character
    ("𠀀", TextEncoding.GB18030, False, "3f"),
    ("𠀀", TextEncoding.GBK, False, "3f"),
    ("€", TextEncoding.GBK, False, "3f"),  # outside GBK (Python's gbk codec)
    ("a\x1bb\n", TextEncoding.UTF8, False, "61 62 0a"),  # control characters dropped
])
def test_encode_text(text: str, encoding: TextEncoding, four: bool, raw: str) -> None:
    assert encode_text(text, encoding, four_byte=four) == bytes.fromhex(raw)


@pytest.mark.parametrize(("raw", "encoding", "chinese", "shown"), [
    ("c9 e7 b1 a3", TextEncoding.GB18030, True, "社保"),
    ("c9 e7 b1 a3", TextEncoding.GBK, True, "社保"),
    ("e7 a4 be e4 bf 9d", TextEncoding.UTF8, False, "社保"),
])
def test_decode_text(raw: str, encoding: TextEncoding, chinese: bool, shown: str) -> None:
    assert decode_text(bytes.fromhex(raw), encoding, chinese) == shown


def test_a_utf8_printer_in_chinese_mode_garbles() -> None:
    assert decode_text("社保".encode(), TextEncoding.UTF8, True) != "社保"
