"""Laying a ticket document out as ESC/POS bytes (``drivers.escpos_printer.layout``)."""

from __future__ import annotations

import pytest

from drivers.escpos_printer.codec import Op, OpKind, decode_text, tokenize
from drivers.escpos_printer.layout import display_width, render_ticket, ticket_text, wrap
from gated.booth.ticket import ticket_document
from tests.support.tickets import cfg, info


@pytest.mark.parametrize(("s", "width"), [("A007", 4), ("综合窗口", 8), ("A号", 3), ("", 0)])
def test_display_width(s: str, width: int) -> None:
    assert display_width(s) == width


@pytest.mark.parametrize(("s", "columns", "lines"), [
    ("abcdef", 4, ["abcd", "ef"]),
    ("便民服务中心", 5, ["便民", "服务", "中心"]),
    ("a便民", 4, ["a便", "民"]),
    ("便", 1, ["便"]),  # a character wider than the line still prints
])
def test_wrap(s: str, columns: int, lines: list[str]) -> None:
    assert list(wrap(s, columns)) == lines


def _lines(data: bytes) -> list[tuple[int, str]]:
    """(size byte, text) of every printed text line."""
    ops, used = tokenize(data, final=True)
    assert used == len(data)
    out, size, chinese = [], 0, False
    for op in ops:
        if op.kind == OpKind.SIZE:
            size = op.value
        elif op.kind == OpKind.CHINESE_ON:
            chinese = True
        elif op.kind == OpKind.TEXT:
            out.append((size, decode_text(op.data, chinese)))
    return out


def test_layout_number_large_and_centred_cut_partial() -> None:
    doc = ticket_document(cfg(), info(priority=True, priority_label="预约"))
    data = render_ticket(doc, 48, 6)
    ops, _ = tokenize(data, final=True)
    assert ops[:2] == [Op(OpKind.INIT), Op(OpKind.CHINESE_ON)]
    assert ops[-2:] == [Op(OpKind.FEED, 4), Op(OpKind.CUT, 1)]
    lines = _lines(data)
    assert (0x33, "B012") in lines and (0x11, "【预约】") in lines
    number_at = next(i for i, o in enumerate(ops) if o.data == b"B012")
    aligns = [o.value for o in ops[:number_at] if o.kind == OpKind.ALIGN]
    assert aligns[-1] == 1
    store = next(o for o in ops if o.kind == OpKind.QR_STORE)
    assert store.data.decode() == doc["rating_url"]
    assert next(o for o in ops if o.kind == OpKind.QR_MODULE).value == 6


def test_layout_long_lines_wrap_to_columns() -> None:
    doc = ticket_document(cfg(footer="请保管好本票据" * 6), info())
    for size, text in _lines(render_ticket(doc, 32, 4)):
        mag = (size & 7) + 1
        assert display_width(text) * mag <= 32, text


def test_layout_old_document_without_optional_keys_still_prints() -> None:
    data = render_ticket({"number": "A001"}, 48, 6)
    assert (0x33, "A001") in _lines(data)
    assert not any(o.kind == OpKind.QR_STORE for o in tokenize(data, final=True)[0])


def test_ticket_text_baseline_holds_the_same_content() -> None:
    doc = ticket_document(cfg(), info())
    text = ticket_text(doc)
    for key in ("number", "service", "rating_url", "hotline_number"):
        assert doc[key] in text
