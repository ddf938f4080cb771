"""Turn the ESC/POS operations of one ticket into a picture and a text, like paper would.

Used by the printer simulator: ``TicketCanvas.apply`` takes the tokenizer's operations one by
one (alignment, character size, bold, Chinese mode, text, feeds, native QR) until the cut.
The PNG is 12 dots per column of font A (576 dots for 48 columns: an 80 mm head at 203 dpi),
text 24 dots high per size step, QR modules ``module`` dots wide with a four-module quiet
zone, so a phone or ``cv2.QRCodeDetector`` reads the code off the picture as off paper.
Chinese needs a CJK font: Debian's fonts-wqy-microhei is used when present; without it text
renders in Pillow's default font (Chinese as boxes) and the text file is still exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import qrcode
import qrcode.constants
from PIL import Image, ImageDraw, ImageFont

from drivers.escpos_printer.codec import Align, Op, OpKind
from drivers.escpos_printer.encoding import TextEncoding, decode_text
from drivers.escpos_printer.raster import decode_raster

DOT_W = 12  # font A cell width in dots
DOT_H = 24  # font A line height in dots
CJK_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)
_ECC = {48: qrcode.constants.ERROR_CORRECT_L, 49: qrcode.constants.ERROR_CORRECT_M,
        50: qrcode.constants.ERROR_CORRECT_Q, 51: qrcode.constants.ERROR_CORRECT_H}

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def find_font() -> Path | None:
    return next((p for p in CJK_FONTS if p.exists()), None)


@dataclass
class _Segment:
    text: str
    width: int  # magnification
    height: int
    bold: bool


@dataclass
class _Line:
    segments: list[_Segment]
    align: Align


@dataclass
class _Qr:
    data: bytes
    module: int
    ecc: int
    align: Align


@dataclass
class _Raster:
    rows: list[list[bool]]
    align: Align


@dataclass
class TicketCanvas:
    columns: int = 48
    items: list[_Line | _Qr | _Raster] = field(default_factory=list)
    #: the printer's text encoding, and whether it is in Chinese mode after ESC @
    encoding: TextEncoding = TextEncoding.GB18030
    chinese_at_init: bool = False
    chinese: bool = False
    align: Align = Align.LEFT
    width: int = 1
    height: int = 1
    bold: bool = False
    qr_module: int = 3
    qr_ecc: int = 48
    qr_data: bytes = b""
    _segments: list[_Segment] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.items and not self._segments

    def apply(self, op: Op) -> bool:
        """Take one operation; True when it cut the paper (the ticket is complete)."""
        k = op.kind
        if k == OpKind.INIT:
            self.chinese, self.align, self.width, self.height, self.bold = (
                self.chinese_at_init, Align.LEFT, 1, 1, False)
        elif k in (OpKind.CHINESE_ON, OpKind.CHINESE_OFF):
            self.chinese = k == OpKind.CHINESE_ON
        elif k == OpKind.ALIGN:
            self.align = Align(op.value % 48) if op.value % 48 <= 2 else Align.LEFT
        elif k == OpKind.SIZE:
            self.width, self.height = (op.value >> 4 & 7) + 1, (op.value & 7) + 1
        elif k == OpKind.BOLD:
            self.bold = bool(op.value & 1)
        elif k == OpKind.TEXT:
            self._segments.append(_Segment(decode_text(op.data, self.encoding, self.chinese),
                                           self.width, self.height, self.bold))
        elif k == OpKind.NEWLINE:
            self._newline()
        elif k == OpKind.FEED:
            self._newline()
            self.items += [_Line([], self.align) for _ in range(op.value)]
        elif k == OpKind.QR_MODULE:
            self.qr_module = op.value
        elif k == OpKind.QR_ECC:
            self.qr_ecc = op.value
        elif k == OpKind.QR_STORE:
            self.qr_data = op.data
        elif k == OpKind.QR_PRINT and self.qr_data:
            self._newline(only_if_text=True)
            self.items.append(_Qr(self.qr_data, self.qr_module, self.qr_ecc, self.align))
        elif k == OpKind.RASTER:
            self._newline(only_if_text=True)
            self.items.append(_Raster(decode_raster(op.data), self.align))
        elif k == OpKind.CUT:
            self._newline(only_if_text=True)
            return True
        return False

    def _newline(self, *, only_if_text: bool = False) -> None:
        if only_if_text and not self._segments:
            return
        self.items.append(_Line(self._segments, self.align))
        self._segments = []

    # ------------------------------------------------------------------ output
    def text(self) -> str:
        out = []
        for item in self.items:
            if isinstance(item, _Qr):
                out.append("[QR] " + item.data.decode("utf-8", "replace"))
            elif isinstance(item, _Raster):
                out.append(f"[IMAGE {len(item.rows[0])}x{len(item.rows)}]")
            else:
                out.append("".join(s.text for s in item.segments))
        while out and not out[-1]:
            out.pop()
        return "\n".join(out) + "\n"

    def image(self, font_path: Path | None) -> Image.Image:
        width = self.columns * DOT_W
        blocks = [self._block(item, width, font_path) for item in self.items]
        img = Image.new("L", (width, sum(b.height for _, b in blocks) + 2 * DOT_H), 255)
        y = DOT_H
        for align, block in blocks:
            x = {Align.LEFT: 0, Align.CENTER: (width - block.width) // 2,
                 Align.RIGHT: width - block.width}[align]
            img.paste(block, (max(0, x), y))
            y += block.height
        return img

    def _block(self, item: _Line | _Qr | _Raster, width: int,
               font_path: Path | None) -> tuple[Align, Image.Image]:
        if isinstance(item, _Raster):
            img = Image.new("L", (len(item.rows[0]), len(item.rows)), 255)
            img.putdata([0 if dot else 255 for row in item.rows for dot in row])
            return item.align, img
        if isinstance(item, _Qr):
            code = qrcode.QRCode(error_correction=_ECC.get(item.ecc, _ECC[48]),
                                 box_size=max(1, item.module), border=4)
            code.add_data(item.data)
            code.make(fit=True)
            return item.align, code.make_image().get_image().convert("L")
        height = max((s.height for s in item.segments), default=1) * DOT_H
        parts = [_draw(s, font_path) for s in item.segments if s.text]
        line = Image.new("L", (max(1, min(width, sum(p.width for p in parts))), height), 255)
        x = 0
        for part in parts:
            line.paste(part, (x, height - part.height))
            x += part.width
        return item.align, line


def _font(font_path: Path | None, px: int) -> Font:
    if font_path is not None:
        try:  # the monospaced face of a collection: half-width ASCII like a printer's font A
            return ImageFont.truetype(str(font_path), px, index=1)
        except OSError:
            return ImageFont.truetype(str(font_path), px)
    return ImageFont.load_default(px)


def _draw(seg: _Segment, font_path: Path | None) -> Image.Image:
    px = DOT_H * seg.height
    font = _font(font_path, px)
    w = max(1, int(font.getlength(seg.text)))
    img = Image.new("L", (w, px), 255)
    draw = ImageDraw.Draw(img)
    draw.text((0, 0), seg.text, font=font, fill=0,
              stroke_width=1 if seg.bold else 0, stroke_fill=0)
    if seg.width != seg.height:
        img = img.resize((max(1, w * seg.width // seg.height), px))
    return img
