"""Raster images for printers without native QR: ``GS v 0`` (print raster bit image).

``GS v 0 m xL xH yL yH d1...dk``: ``m`` 0 normal density, ``xL + 256 * xH`` bytes per row,
``yL + 256 * yH`` rows, then the rows top to bottom, each byte eight dots, most significant
bit leftmost, 1 = black (the layout python-escpos's ``bitImageRaster`` sends; see
docs/PROTOCOLS-hardware.md). Pure: bytes in, bytes out; the QR code is drawn with ``qrcode``
(already a dependency, for the simulator's renderer too).
"""

from __future__ import annotations

from collections.abc import Sequence

import qrcode
import qrcode.constants

GS = 0x1D
HEADER = 8  # GS v 0 m xL xH yL yH
MAX_ROW_BYTES = 255  # 2040 dots: wider than any receipt head
MAX_ROWS = 2303  # a common limit for one GS v 0 image


def raster(rows: Sequence[Sequence[bool]]) -> bytes:
    """``GS v 0`` for ``rows`` of dots (True = black), all of one width."""
    if not rows or not rows[0]:
        raise ValueError("empty image")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ValueError("rows of different widths")
    row_bytes = (width + 7) // 8
    if row_bytes > MAX_ROW_BYTES or len(rows) > MAX_ROWS:
        raise ValueError(f"image of {width}x{len(rows)} dots is too large")
    out = bytearray((GS, 0x76, 0x30, 0, row_bytes & 0xFF, row_bytes >> 8,
                     len(rows) & 0xFF, len(rows) >> 8))
    for row in rows:
        packed = bytearray(row_bytes)
        for x, black in enumerate(row):
            if black:
                packed[x // 8] |= 0x80 >> (x % 8)
        out += packed
    return bytes(out)


def decode_raster(block: bytes) -> list[list[bool]]:
    """The dots of one whole ``GS v 0`` block (header included): the simulator's half."""
    if len(block) < HEADER or block[:3] != b"\x1d\x76\x30":
        raise ValueError("not a GS v 0 block")
    row_bytes = block[4] | block[5] << 8
    height = block[6] | block[7] << 8
    data = block[HEADER:]
    if len(data) != row_bytes * height:
        raise ValueError(f"{len(data)} data bytes for {row_bytes}x{height}")
    return [[bool(data[y * row_bytes + x // 8] & (0x80 >> (x % 8)))
             for x in range(row_bytes * 8)] for y in range(height)]


def qr_raster(data: str, module_dots: int, max_width_dots: int, *, quiet: int = 2) -> bytes:
    """A QR code of ``data`` as a raster image, ``module_dots`` per module (smaller if the
    code would not fit ``max_width_dots``), error correction M like the native QR."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(data.encode("utf-8"))
    code.make(fit=True)
    matrix = code.get_matrix()
    n = len(matrix) + 2 * quiet
    module = max(1, min(module_dots, max_width_dots // n))
    if n * module > max_width_dots:
        raise ValueError(f"QR code of {n} modules does not fit {max_width_dots} dots")
    side = [False] * quiet
    rows = []
    for line in [[False] * len(matrix)] * quiet + [list(r) for r in matrix] + \
            [[False] * len(matrix)] * quiet:
        dots = [d for m in side + list(line) + side for d in [bool(m)] * module]
        rows += [dots] * module
    return raster(rows)
