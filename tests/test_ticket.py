"""Ticket document (content) and its ESC/POS layout, without a printer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from drivers.escpos_printer.codec import Op, OpKind, decode_text, tokenize
from drivers.escpos_printer.layout import display_width, render_ticket, ticket_text, wrap
from gated.booth.ticket import TicketInfo, rating_url, test_ticket_document, ticket_document
from gated.config import GatedConfig


def cfg(**ticket: Any) -> GatedConfig:
    return GatedConfig.model_validate({"site": {"id": "town-1", "timezone": "Asia/Shanghai"},
                                       "booth": {"id": "east"}, "ticket": ticket})


def info(**over: Any) -> TicketInfo:
    values: dict[str, Any] = dict(ticket_id="T1", number="B012", service_name="社保医保",
                                  issued_at=datetime(2026, 3, 2, 16, 30, tzinfo=UTC),
                                  ahead=0, wait_min=5)
    values.update(over)
    return TicketInfo(**values)


def test_document_fields() -> None:
    doc = ticket_document(cfg(footer="谢谢"), info(priority=True))
    assert doc["booth_name"] == "east"  # no display name configured: the id
    assert doc["time"] == "2026-03-03 00:30"  # local time, next day in Shanghai
    assert doc["issued_at"] == "2026-03-03T00:30:00+08:00"
    assert doc["priority_mark"] == "优先"  # no label: the configured mark
    assert doc["masked_name"] == "" and doc["footer"] == "谢谢"
    assert doc["hotline_label"] == "办不成事找局长" and doc["first_responder"] == "首问负责台"


def test_document_local_time_from_any_offset() -> None:
    when = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    assert ticket_document(cfg(), info(issued_at=when))["time"] == "2026-03-02 09:00"


def test_document_refuses_naive_time() -> None:
    with pytest.raises(ValueError):
        ticket_document(cfg(), info(issued_at=datetime(2026, 3, 2, 9, 0)))


@pytest.mark.parametrize(("template", "expected"), [
    ("https://x/r?t={ticket_id}", "https://x/r?t=T%2F1%20a"),
    ("https://x/{site}/{booth}/{ticket_id}", "https://x/town-1/east/T%2F1%20a"),
    ("https://x/r?t={ticket_id}&x={other}", "https://x/r?t=T%2F1%20a&x={other}"),
])
def test_rating_url(template: str, expected: str) -> None:
    assert rating_url(template, ticket_id="T/1 a", site="town-1", booth="east") == expected


@pytest.mark.parametrize(("configured", "name", "expected"), [
    (False, "张*", ""), (True, "张*", "张*"), (True, "欧阳**", "欧阳**"),
    (True, "张三", ""), (True, "", "")])
def test_masked_name(configured: bool, name: str, expected: str) -> None:
    doc = ticket_document(cfg(print_masked_name=configured), info(masked_name=name))
    assert doc["masked_name"] == expected


def test_test_ticket_is_marked_and_complete() -> None:
    doc = test_ticket_document(cfg(print_masked_name=True),
                               datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    assert doc["test"] and doc["priority"] and doc["masked_name"] == "张*"
    assert doc["ticket_id"].startswith("TEST-")


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
