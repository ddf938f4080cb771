"""Lay a ticket document (``gated.ticket.ticket_document``) out as ESC/POS bytes.

Pure: the same document always gives the same bytes. Layout, top to bottom: hall and booth,
a reprint or test banner, the service, the number in large type, the priority mark, people
ahead and the estimated wait, the time, the masked name (only when the document carries one),
the rating QR code with its label, the escalation hotline, the first-responder desk, the
footer, then a feed and a partial cut. Lines are wrapped by display width (a Chinese character
takes two columns of font A). Only keys of the document are printed; a missing key prints
nothing rather than failing, so an older stored document still prints.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Iterator
from typing import Any, NamedTuple

from drivers.escpos_printer.codec import (
    Align,
    Cut,
    QrEcc,
    align,
    bold,
    chinese,
    cut,
    feed,
    init,
    qr,
    size,
)
from drivers.escpos_printer.encoding import TextEncoding, encode_text

NUMBER_SIZE = 4  # magnification of the ticket number
MARK_SIZE = 2
FEED_BEFORE_CUT = 4  # lines from the last print line to the cutter on common 80 mm heads


def display_width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def wrap(s: str, columns: int) -> Iterator[str]:
    """Split ``s`` into lines of at most ``columns`` display columns (never empty input)."""
    if len(s) * 2 <= columns or display_width(s) <= columns:
        if s:
            yield s
        return
    cur, width = "", 0
    for c in s:
        w = display_width(c)
        if width + w > columns and cur:
            yield cur
            cur, width = "", 0
        cur += c
        width += w
    if cur:
        yield cur


class QrMode(enum.StrEnum):
    NATIVE = "native"  # GS ( k: the printer draws it
    RASTER = "raster"  # GS v 0: we draw it (printers without native QR)


class _Builder:
    def __init__(self, columns: int, four_byte: bool, encoding: TextEncoding,
                 chinese_mode: bool) -> None:
        self.columns = columns
        self.four_byte = four_byte
        self.encoding = encoding
        self.out = bytearray(init() + (chinese(True) if chinese_mode else b""))
        # the state ESC @ leaves; a command is sent only when it changes (bytes are wire time)
        self._align, self._mag, self._bold = Align.LEFT, 1, False

    def add(self, data: bytes) -> None:
        self.out += data

    def style(self, where: Align, mag: int = 1, emphasis: bool = False) -> None:
        if where != self._align:
            self.out += align(where)
            self._align = where
        if mag != self._mag:
            self.out += size(mag, mag)
            self._mag = mag
        if emphasis != self._bold:
            self.out += bold(emphasis)
            self._bold = emphasis

    def text(self, s: str, *, mag: int = 1, emphasis: bool = False,
             where: Align = Align.CENTER) -> None:
        if not s:
            return
        self.style(where, mag, emphasis)
        for part in wrap(s, max(1, self.columns // mag)):
            self.out += encode_text(part, self.encoding, four_byte=self.four_byte) + b"\n"

    def rule(self) -> None:
        self.style(Align.LEFT)
        self.out += b"-" * self.columns + b"\n"


def _s(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    return "" if value is None else str(value)


class ItemKind(enum.StrEnum):
    TEXT = "text"
    RULE = "rule"
    QR = "qr"


class Item(NamedTuple):
    """One element of a ticket, top to bottom; how it looks is up to the renderer."""

    kind: ItemKind
    text: str = ""
    mag: int = 1
    emphasis: bool = False


def ticket_items(doc: dict[str, Any]) -> list[Item]:
    """What the ticket shows, in order: the one description both renderers below walk."""
    items: list[Item] = []

    def text(s: str, mag: int = 1, emphasis: bool = False) -> None:
        if s:
            items.append(Item(ItemKind.TEXT, s, mag, emphasis))

    text(_s(doc, "hall_name"), emphasis=True)
    text(_s(doc, "booth_name"))
    if doc.get("test"):
        text("*** 测试票 仅供测试 ***", emphasis=True)
    if doc.get("reprint"):
        text("*** 补打 ***", emphasis=True)
    if doc.get("reminder"):
        text("您的号码仍有效 (your number is still valid)", emphasis=True)
    items.append(Item(ItemKind.RULE))
    text(_s(doc, "service"), mag=2)
    text(_s(doc, "number"), mag=NUMBER_SIZE, emphasis=True)
    if doc.get("priority") and doc.get("priority_mark"):
        text(f"【{_s(doc, 'priority_mark')}】", mag=MARK_SIZE, emphasis=True)
    if "ahead" in doc:
        text(f"前面还有 {_s(doc, 'ahead')} 人")
    if "wait_min" in doc:
        text(f"预计等候约 {_s(doc, 'wait_min')} 分钟")
    text(f"取号时间 {_s(doc, 'time')}" if doc.get("time") else "")
    text(f"姓名 {_s(doc, 'masked_name')}" if doc.get("masked_name") else "")
    url = _s(doc, "rating_url")
    if url:
        items.append(Item(ItemKind.RULE))
        items.append(Item(ItemKind.QR, url))
        text(_s(doc, "rating_label"))
    items.append(Item(ItemKind.RULE))
    if doc.get("hotline_label") or doc.get("hotline_number"):
        text(f"{_s(doc, 'hotline_label')} {_s(doc, 'hotline_number')}".strip(), emphasis=True)
    text(f"如有疑问请到 {_s(doc, 'first_responder')}" if doc.get("first_responder") else "")
    text(_s(doc, "footer"))
    return items


def render_ticket(doc: dict[str, Any], columns: int = 48, qr_module: int = 6, *,
                  four_byte: bool = True, encoding: TextEncoding = TextEncoding.GB18030,
                  chinese_mode: bool = True, qr_mode: QrMode = QrMode.NATIVE,
                  dots: int = 576) -> bytes:
    """ESC/POS bytes for one ticket, from initialise to partial cut.

    ``encoding`` and ``chinese_mode`` (send ``FS &``) as the printer wants its text
    (``drivers.escpos_printer.encoding``); ``qr_mode`` raster draws the QR code as a
    ``GS v 0`` image at most ``dots`` wide (the head: 384 on 58 mm paper, 576 on 80 mm)."""
    b = _Builder(columns, four_byte, encoding, chinese_mode)
    for item in ticket_items(doc):
        if item.kind is ItemKind.TEXT:
            b.text(item.text, mag=item.mag, emphasis=item.emphasis)
        elif item.kind is ItemKind.RULE:
            b.rule()
        elif qr_mode is QrMode.RASTER:
            b.style(Align.CENTER)
            # imported here: qrcode and Pillow cost the daemon ~5 MB, and only printers
            # without a native QR command (qr = "raster") need them
            from drivers.escpos_printer.raster import qr_raster

            b.add(qr_raster(item.text, qr_module, dots) + b"\n")
        else:
            b.style(Align.CENTER)
            b.add(qr(item.text, qr_module, QrEcc.M) + b"\n")
    b.add(feed(FEED_BEFORE_CUT) + cut(Cut.PARTIAL))
    return bytes(b.out)


def ticket_text(doc: dict[str, Any]) -> str:
    """The same ticket as plain lines (the QR code as its URL): the bench's baseline, and a
    record of what printed."""
    return "".join(f"{i.text}\n" for i in ticket_items(doc) if i.kind is not ItemKind.RULE)
