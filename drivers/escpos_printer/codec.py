"""ESC/POS bytes for ticket printers (PROTOCOLS.md section 3): pure functions, no I/O.

Three parts:
- command builders: the few commands a ticket needs, Chinese mode (``FS &``) and GB18030 text
  included, native QR (``GS ( k``), feed and cut;
- status decoding: real-time status (``DLE EOT n``, one byte per request, fixed bits
  ``0xx1xx10``) and Epson-style automatic status back (``GS a``, four unprompted bytes, the
  first one ``0xx1xx00``), and ``split_replies`` which separates the two in one input stream;
- ``tokenize``: an ESC/POS stream back into operations, for the simulator and for tests.

What a caller must know:
- ``text`` encodes GB18030. Many printers only know its two-byte range (GBK); with
  ``four_byte=False`` a character that needs four bytes is printed as ``?`` instead of
  garbling the rest of the line (a name with a rare character then needs a raster image).
- A status byte that breaks the fixed bits is a ``ProtocolError``: that is how noise on the
  line, a wrong baud rate or a printer that does not speak ESC/POS is told apart from a status.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from drivers.base import PrinterStatus, ProtocolError

ESC, GS, FS, DLE, EOT, LF = 0x1B, 0x1D, 0x1C, 0x10, 0x04, 0x0A
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f]")  # every control character but newline


class Align(enum.IntEnum):
    LEFT = 0
    CENTER = 1
    RIGHT = 2


class QrEcc(enum.IntEnum):
    L = 48
    M = 49
    Q = 50
    H = 51


class Cut(enum.Enum):
    FULL = b"\x1d\x56\x00"
    PARTIAL = b"\x1d\x56\x01"


class StatusQuery(enum.IntEnum):
    """``DLE EOT n``: which status byte to ask for."""

    PRINTER = 1
    OFFLINE_CAUSE = 2
    ERROR_CAUSE = 3
    PAPER = 4


QR_MAX_DATA = 7089  # model 2, numeric, level L; the printer's own limit may be lower
ASB_LENGTH = 4


# --------------------------------------------------------------------------- builders


def init() -> bytes:
    """``ESC @``. Leaves Chinese mode on some printers and not on others: follow with
    ``chinese(True)``."""
    return b"\x1b\x40"


def chinese(on: bool) -> bytes:
    return b"\x1c\x26" if on else b"\x1c\x2e"


def align(a: Align) -> bytes:
    return bytes((ESC, 0x61, a.value))


def size(width: int = 1, height: int = 1) -> bytes:
    """``GS ! n``: magnification 1..8 in each direction."""
    if not (1 <= width <= 8 and 1 <= height <= 8):
        raise ValueError(f"size {width}x{height} out of range 1..8")
    return bytes((GS, 0x21, (width - 1) << 4 | (height - 1)))


def bold(on: bool) -> bytes:
    return bytes((ESC, 0x45, 1 if on else 0))


def text(s: str, *, four_byte: bool = True) -> bytes:
    """GB18030 bytes for ``s``; the printer must be in Chinese mode. Control characters other
    than newline are dropped so text can never inject a command."""
    clean = _CONTROL.sub("", s)
    if four_byte:
        return clean.encode("gb18030")
    out = bytearray()
    for c in clean:
        b = c.encode("gb18030")
        out += b if len(b) <= 2 else b"?"
    return bytes(out)


def line(s: str = "", *, four_byte: bool = True) -> bytes:
    return text(s, four_byte=four_byte) + b"\n"


def feed(lines: int) -> bytes:
    if not 0 <= lines <= 255:
        raise ValueError(f"feed {lines} out of range 0..255")
    return bytes((ESC, 0x64, lines))


def cut(kind: Cut = Cut.PARTIAL) -> bytes:
    return kind.value


def _qr_fn(fn: int, payload: bytes) -> bytes:
    n = len(payload) + 2
    return bytes((GS, 0x28, 0x6B, n & 0xFF, n >> 8, 0x31, fn)) + payload


def qr(data: bytes | str, module: int = 6, ecc: QrEcc = QrEcc.M) -> bytes:
    """Native QR, model 2: select model, module size, error correction, store, print."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if not raw:
        raise ValueError("empty QR payload")
    if len(raw) > QR_MAX_DATA:
        raise ValueError(f"QR payload of {len(raw)} bytes exceeds {QR_MAX_DATA}")
    if not 1 <= module <= 16:
        raise ValueError(f"QR module size {module} out of range 1..16")
    return (_qr_fn(0x41, b"\x32\x00") + _qr_fn(0x43, bytes((module,)))
            + _qr_fn(0x45, bytes((ecc.value,))) + _qr_fn(0x50, b"\x30" + raw)
            + _qr_fn(0x51, b"\x30"))


def status_request(n: StatusQuery) -> bytes:
    return bytes((DLE, EOT, n.value))


def asb_enable(on: bool = True) -> bytes:
    """``GS a n``: online/offline, error and paper sensor status (bits 1-3), or off."""
    return bytes((GS, 0x61, 0x0E if on else 0x00))


# --------------------------------------------------------------------------- status


def is_status_byte(b: int) -> bool:
    """A ``DLE EOT`` reply: bits 0 and 7 off, bits 1 and 4 on."""
    return b & 0x93 == 0x12


def is_asb_first(b: int) -> bool:
    """The first byte of an automatic status back block: bits 0, 1 and 7 off, bit 4 on."""
    return b & 0x93 == 0x10


@dataclass(frozen=True)
class StatusBits:
    """What the four ``DLE EOT`` replies (or one ASB block) say; ``None`` = not asked."""

    online: bool | None = None
    cover_open: bool | None = None
    feed_button: bool | None = None
    stopped_paper_end: bool | None = None
    error: bool | None = None
    cutter_error: bool | None = None
    unrecoverable: bool | None = None
    auto_recoverable: bool | None = None
    paper_near_end: bool | None = None
    paper_out: bool | None = None

    def merged(self, other: StatusBits) -> StatusBits:
        """``other``'s known fields over this one's."""
        values = {k: v for k, v in other.__dict__.items() if v is not None}
        return StatusBits(**{**self.__dict__, **values})

    def printer_status(self) -> PrinterStatus:
        """The core's view; unknown fields count as fine (ask all four to know)."""
        return PrinterStatus(
            online=self.online is not False,
            cover_open=bool(self.cover_open),
            paper_near_end=bool(self.paper_near_end),
            paper_out=bool(self.paper_out or self.stopped_paper_end),
            cutter_error=bool(self.cutter_error))


def decode_status(n: StatusQuery, b: int) -> StatusBits:
    """One ``DLE EOT n`` reply byte."""
    if not is_status_byte(b):
        raise ProtocolError(f"DLE EOT {n.value} reply {b:02X} breaks the fixed bits 0xx1xx10")
    bit = lambda i: bool(b >> i & 1)  # noqa: E731
    if n == StatusQuery.PRINTER:
        return StatusBits(online=not bit(3))
    if n == StatusQuery.OFFLINE_CAUSE:
        return StatusBits(cover_open=bit(2), feed_button=bit(3), stopped_paper_end=bit(5),
                          error=bit(6))
    if n == StatusQuery.ERROR_CAUSE:
        return StatusBits(cutter_error=bit(3), unrecoverable=bit(5), auto_recoverable=bit(6))
    return StatusBits(paper_near_end=b & 0x0C == 0x0C, paper_out=b & 0x60 == 0x60)


def encode_status(n: StatusQuery, s: StatusBits) -> int:
    """The reply byte a printer in state ``s`` sends (the simulator's half of the codec)."""
    def on(flag: bool | None, mask: int) -> int:
        return mask if flag else 0
    if n == StatusQuery.PRINTER:
        return 0x12 | on(s.online is False, 0x08)
    if n == StatusQuery.OFFLINE_CAUSE:
        return (0x12 | on(s.cover_open, 0x04) | on(s.feed_button, 0x08)
                | on(s.stopped_paper_end, 0x20) | on(s.error, 0x40))
    if n == StatusQuery.ERROR_CAUSE:
        return (0x12 | on(s.cutter_error, 0x08) | on(s.unrecoverable, 0x20)
                | on(s.auto_recoverable, 0x40))
    return 0x12 | on(s.paper_near_end, 0x0C) | on(s.paper_out, 0x60)


def decode_asb(block: bytes) -> StatusBits:
    """Four ASB bytes, Epson layout (TM-U220, TM-T88, HPRT TP80K and most clones)."""
    if len(block) != ASB_LENGTH:
        raise ProtocolError(f"ASB block of {len(block)} bytes, expected {ASB_LENGTH}")
    b1, b2, b3, b4 = block
    if not is_asb_first(b1) or any(b & 0x90 for b in (b2, b3, b4)):
        raise ProtocolError(f"ASB block {block.hex(' ')} breaks the fixed bits")
    return StatusBits(online=not b1 & 0x08, cover_open=bool(b1 & 0x20),
                      feed_button=bool(b1 & 0x40), cutter_error=bool(b2 & 0x08),
                      unrecoverable=bool(b2 & 0x20), auto_recoverable=bool(b2 & 0x40),
                      error=bool(b2 & 0x6C), paper_near_end=b3 & 0x03 == 0x03,
                      paper_out=b3 & 0x0C == 0x0C)


def encode_asb(s: StatusBits) -> bytes:
    b1 = 0x10 | (0x08 if s.online is False else 0) | (0x20 if s.cover_open else 0)
    b2 = ((0x08 if s.cutter_error else 0) | (0x20 if s.unrecoverable else 0)
          | (0x40 if s.auto_recoverable else 0))
    b3 = (0x03 if s.paper_near_end else 0) | (0x0C if s.paper_out else 0)
    return bytes((b1, b2, b3, 0))


@dataclass(frozen=True)
class Reply:
    """One item of the printer's input stream: a status byte, an ASB block, or noise."""

    kind: str  # "status", "asb", "garbage"
    data: bytes


def split_replies(buf: bytes) -> tuple[list[Reply], int]:
    """Split what the printer sent into replies; returns them and the bytes consumed.

    An incomplete ASB block at the end is left unconsumed for the next read.
    """
    out: list[Reply] = []
    i = 0
    while i < len(buf):
        b = buf[i]
        if is_status_byte(b):
            out.append(Reply("status", buf[i:i + 1]))
            i += 1
        elif is_asb_first(b):
            if len(buf) - i < ASB_LENGTH:
                break
            block = buf[i:i + ASB_LENGTH]
            ok = not any(x & 0x90 for x in block[1:])
            out.append(Reply("asb" if ok else "garbage", block if ok else block[:1]))
            i += ASB_LENGTH if ok else 1
        else:
            out.append(Reply("garbage", buf[i:i + 1]))
            i += 1
    return out, i


# --------------------------------------------------------------------------- tokenizer


class OpKind(enum.StrEnum):
    INIT = "init"
    CHINESE_ON = "chinese_on"
    CHINESE_OFF = "chinese_off"
    ALIGN = "align"
    SIZE = "size"
    BOLD = "bold"
    PRINT_MODE = "print_mode"  # ESC ! n
    TEXT = "text"  # raw bytes; decode with ``decode_text``
    NEWLINE = "newline"
    FEED = "feed"
    CUT = "cut"
    QR_MODEL = "qr_model"
    QR_MODULE = "qr_module"
    QR_ECC = "qr_ecc"
    QR_STORE = "qr_store"
    QR_PRINT = "qr_print"
    RASTER = "raster"  # GS v 0: the whole block, header included, in Op.data
    STATUS_REQUEST = "status_request"
    ASB = "asb"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Op:
    kind: OpKind
    value: int = 0
    data: bytes = b""


# prefix -> (kind, number of argument bytes); the argument becomes Op.value
_FIXED: dict[bytes, tuple[OpKind, int]] = {
    b"\x1b\x40": (OpKind.INIT, 0),
    b"\x1b\x61": (OpKind.ALIGN, 1),
    b"\x1b\x45": (OpKind.BOLD, 1),
    b"\x1b\x64": (OpKind.FEED, 1),
    b"\x1b\x21": (OpKind.PRINT_MODE, 1),
    b"\x1d\x21": (OpKind.SIZE, 1),
    b"\x1d\x61": (OpKind.ASB, 1),
    b"\x1c\x26": (OpKind.CHINESE_ON, 0),
    b"\x1c\x2e": (OpKind.CHINESE_OFF, 0),
    b"\x10\x04": (OpKind.STATUS_REQUEST, 1),
}
_QR_FN = {0x41: OpKind.QR_MODEL, 0x43: OpKind.QR_MODULE, 0x45: OpKind.QR_ECC,
          0x50: OpKind.QR_STORE, 0x51: OpKind.QR_PRINT}
_PREFIXES = (ESC, GS, FS, DLE)


def _command(buf: bytes, i: int) -> tuple[Op, int] | None:
    """The command at ``buf[i]`` (a prefix byte) and its length, or None if incomplete."""
    if len(buf) - i < 2:
        return None
    head = buf[i:i + 2]
    if head in _FIXED:
        kind, nargs = _FIXED[head]
        if len(buf) - i < 2 + nargs:
            return None
        return Op(kind, buf[i + 2] if nargs else 0), 2 + nargs
    if head == b"\x1d\x56":  # GS V m [n]
        if len(buf) - i < 3:
            return None
        m = buf[i + 2]
        if m in (0x41, 0x42, 0x61, 0x62, 0x67, 0x68):
            if len(buf) - i < 4:
                return None
            return Op(OpKind.CUT, m, buf[i + 3:i + 4]), 4
        return Op(OpKind.CUT, m), 3
    if head == b"\x1d\x76":  # GS v 0 m xL xH yL yH data
        if len(buf) - i < 8:
            return None
        size = 8 + (buf[i + 4] | buf[i + 5] << 8) * (buf[i + 6] | buf[i + 7] << 8)
        if len(buf) - i < size:
            return None
        return Op(OpKind.RASTER, buf[i + 3], buf[i:i + size]), size
    if head == b"\x1d\x28":  # GS ( fn pL pH ...
        if len(buf) - i < 5:
            return None
        n = buf[i + 3] | buf[i + 4] << 8
        if len(buf) - i < 5 + n:
            return None
        body = buf[i + 5:i + 5 + n]
        if buf[i + 2] == 0x6B and n >= 2 and body[0] == 0x31 and body[1] in _QR_FN:
            kind = _QR_FN[body[1]]
            args = body[2:]
            if kind == OpKind.QR_STORE:
                return Op(kind, 0, args[1:]), 5 + n
            return Op(kind, args[0] if args else 0, args), 5 + n
        return Op(OpKind.UNKNOWN, 0, buf[i:i + 5 + n]), 5 + n
    return Op(OpKind.UNKNOWN, 0, head), 2  # unknown command: skip prefix and function byte


def tokenize(buf: bytes, *, final: bool = False) -> tuple[list[Op], int]:
    """Parse ``buf`` into operations; returns them and the number of bytes consumed.

    Streaming: an incomplete command, or text not yet ended by a newline or a command, stays
    unconsumed unless ``final``; call again with it and the next bytes. GB18030 never uses
    bytes below 0x30 in a character, so a text run can never swallow a command.
    """
    ops: list[Op] = []
    i = 0
    n = len(buf)
    while i < n:
        b = buf[i]
        if b in _PREFIXES:
            got = _command(buf, i)
            if got is None:
                if not final:
                    break
                ops.append(Op(OpKind.UNKNOWN, 0, buf[i:]))
                i = n
                break
            op, length = got
            ops.append(op)
            i += length
        elif b == LF:
            ops.append(Op(OpKind.NEWLINE))
            i += 1
        elif b < 0x20:
            if b != 0x0D:  # CR is harmless; anything else is not ours
                ops.append(Op(OpKind.UNKNOWN, 0, buf[i:i + 1]))
            i += 1
        else:
            j = i
            while j < n and buf[j] >= 0x20:
                j += 1
            if j == n and not final:
                break
            ops.append(Op(OpKind.TEXT, 0, buf[i:j]))
            i = j
    return ops, i


def decode_text(raw: bytes, chinese_mode: bool) -> str:
    """Text bytes as the printer shows them: GB18030 in Chinese mode, else ASCII."""
    if chinese_mode:
        return raw.decode("gb18030", "replace")
    return raw.decode("ascii", "replace")
