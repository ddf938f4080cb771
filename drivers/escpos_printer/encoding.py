"""How a printer wants Chinese text: GB18030, GBK or UTF-8, with or without ``FS &``.

Printers differ (docs/PROTOCOLS-hardware.md):
- GB18030 printers in Chinese mode (``FS &``, sent after every ``ESC @``): two- and
  four-byte GB18030; many fonts only have the two-byte range, so by default a four-byte
  character prints as ``?`` (``gb18030_four_byte``);
- GBK printers: two bytes per Chinese character; anything outside GBK prints as ``?``;
- UTF-8 printers (set so with their own utility): UTF-8 bytes, and ``FS &`` must not be sent
  (it switches them to a two-byte mode that garbles UTF-8).
Control characters other than newline are dropped, so text can never inject a command.
"""

from __future__ import annotations

import enum
import re

_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f]")  # every control character but newline


class TextEncoding(enum.StrEnum):
    GB18030 = "gb18030"
    GBK = "gbk"
    UTF8 = "utf-8"


def encode_text(s: str, encoding: TextEncoding = TextEncoding.GB18030, *,
                four_byte: bool = False) -> bytes:
    """The bytes of ``s`` for a printer using ``encoding``; what it cannot print is ``?``."""
    clean = _CONTROL.sub("", s)
    if encoding is TextEncoding.UTF8:
        return clean.encode("utf-8")
    if encoding is TextEncoding.GB18030 and four_byte:
        return clean.encode("gb18030")
    out = bytearray()
    for c in clean:
        try:
            b = c.encode(str(encoding))
        except UnicodeEncodeError:
            b = b"?"
        out += b if len(b) <= 2 else b"?"
    return bytes(out)


def decode_text(raw: bytes, encoding: TextEncoding, chinese_mode: bool) -> str:
    """What a printer using ``encoding`` shows for ``raw`` (the simulator's half): a GB
    printer decodes double bytes only in Chinese mode; a UTF-8 one in Chinese mode (it was
    sent ``FS &``) reads them as GB18030 and garbles the text."""
    if encoding is TextEncoding.UTF8:
        return raw.decode("gb18030" if chinese_mode else "utf-8", "replace")
    return raw.decode(str(encoding) if chinese_mode else "ascii", "replace")
