"""One camera frame to QR payloads: zxing-cpp first, OpenCV's detector as a rate-limited fallback.

Why zxing-cpp: on the generated bench set (``bench/qr_frameset.py``, 240 distorted 1280x720
frames) it reads 191 frames where OpenCV's aruco detector reads 108, with 13-15x less CPU per
frame (the figures and the machine are in the README). OpenCV read 1 frame of the 240 that
zxing missed, at the price of a full OpenCV decode of every frame zxing did not read; so
``zxing`` is the default and ``zxing+opencv`` an option: OpenCV looks at frames zxing did not
read at most once per ``opencv_interval_s``, so a camera pointed at nothing pays one OpenCV
decode a second, not one per frame, and one unreadable code in view cannot make every frame
slow.

The steps for one frame (``QrPipeline.decode``):

1. the frame is checked and made grey; a frame no decoder can take raises ``BadFrame``;
2. zxing-cpp, QR codes only (all formats cost ten times as much), with ``return_errors`` so a
   symbol it located but could not decode is known: a code is in view;
3. such a symbol gets a second look: its crop, doubled when small and sharpened, through zxing
   again (blurred and small codes: a few milliseconds, only while a code is in view);
4. in ``zxing+opencv``, OpenCV when the interval allows: on the crop of that symbol, or on the
   whole frame when zxing located none.

Payloads are raw bytes: zxing's ``Barcode.bytes`` (its ``text`` guesses a character set and
turns GBK into Latin-1 mojibake), and OpenCV's ``detectAndDecodeBytes`` with its transcoding
undone (``opencv_raw``). Nothing here logs: the driver logs lengths, never payloads.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

from drivers.camera_qr.settings import DecoderMode

#: the smallest QR symbol (version 1) is 21 modules: a smaller frame cannot hold one
MIN_SIDE = 21
#: a located symbol's crop smaller than this (pixels, its longer side) is doubled for the
#: second look: a small code gains from it, a large one only costs more
UPSCALE_BELOW = 400

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 of a located symbol, in frame pixels


class BadFrame(ValueError):
    """A frame no decoder can take (empty, too small, not 8-bit, odd channels), or one a
    decoder raised on. ``reason`` is a short slug for the log event."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class ReadBy(enum.StrEnum):
    """What read a frame (or that nothing did)."""

    ZXING = "zxing"
    SECOND_LOOK = "second_look"  # zxing again, on the crop of a symbol it located
    OPENCV = "opencv"
    MISS = "miss"


@dataclass
class DecodeCounts:
    """Running totals since the camera was opened (selftest, benchmarks, the close log)."""

    frames: int = 0  # frames handed to the decoders, bad ones included
    zxing: int = 0  # frames read by zxing's first look
    second_look: int = 0  # frames read by zxing's second look at a symbol it located
    opencv: int = 0  # frames read by OpenCV
    opencv_tries: int = 0  # frames OpenCV looked at
    misses: int = 0  # frames no decoder read (most of them: no code in view)
    bad: int = 0  # frames rejected or raised on
    zxing_s: float = 0.0  # seconds in zxing, both looks
    opencv_s: float = 0.0  # seconds in OpenCV
    slowest_s: float = 0.0  # the longest one frame took to decode

    def as_dict(self) -> dict[str, int | float]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Decoded:
    payloads: tuple[bytes, ...]
    by: ReadBy
    seconds: float = field(default=0.0, compare=False)


def as_grey(frame: Any, cv2: ModuleType) -> Any:
    """The frame as a C-contiguous 8-bit grey image, or ``BadFrame`` saying what is wrong."""
    shape = getattr(frame, "shape", None)
    dtype = getattr(frame, "dtype", None)
    if shape is None or dtype is None:
        raise BadFrame("not_an_image", type(frame).__name__)
    if str(dtype) != "uint8":
        raise BadFrame("not_8_bit", str(dtype))
    channels = 1 if len(shape) == 2 else (shape[2] if len(shape) == 3 else 0)
    if channels not in (1, 3, 4):
        raise BadFrame("odd_channels", "x".join(map(str, shape)))
    if min(shape[0], shape[1]) < MIN_SIDE:
        raise BadFrame("too_small", f"{shape[1]}x{shape[0]}")
    if len(shape) == 3 and channels > 1:
        code = cv2.COLOR_BGR2GRAY if channels == 3 else cv2.COLOR_BGRA2GRAY
        return cv2.cvtColor(frame, code)
    grey = frame.reshape(shape[0], shape[1])
    return grey if grey.flags["C_CONTIGUOUS"] else grey.copy()


def opencv_raw(out: bytes) -> bytes:
    """The bytes of the symbol from what OpenCV's ``detectAndDecodeBytes`` returned.

    OpenCV 5 hands back byte-mode data that is not valid UTF-8 transcoded from Latin-1 to
    UTF-8 (GBK ``预约号`` ``d4 a4 d4 bc ba c5`` comes back as ``c3 94 c2 a4 ...``), and valid
    UTF-8 unchanged. So: output that is UTF-8 of Latin-1 characters only, whose Latin-1
    encoding is not itself UTF-8, was transcoded, and that encoding is the symbol's bytes. The
    one payload this gets wrong is UTF-8 text of accented Latin letters only, which OpenCV
    makes indistinguishable (``é`` as UTF-8 and as Latin-1 come back alike); zxing has no such
    loss.
    """
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError:
        return out  # raw bytes already (an OpenCV that does not transcode)
    if text.isascii() or max(map(ord, text)) > 0xFF:
        return out
    raw = text.encode("latin-1")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return out


def _crop(grey: Any, box: Box, margin: float = 0.5) -> Any:
    """The symbol with ``margin`` of its size around it (its quiet zone and some scene)."""
    x0, y0, x1, y1 = box
    m = int(max(x1 - x0, y1 - y0) * margin) + 16
    h, w = grey.shape[:2]
    return grey[max(0, y0 - m):min(h, y1 + m), max(0, x0 - m):min(w, x1 + m)]


class ZxingReader:
    """zxing-cpp, QR codes only."""

    def __init__(self, zxingcpp: ModuleType, cv2: ModuleType) -> None:
        self._zx = zxingcpp
        self._cv2 = cv2
        self._formats = zxingcpp.BarcodeFormat.QRCode

    def read(self, grey: Any) -> tuple[list[bytes], list[Box]]:
        """Payloads read, and the boxes of symbols located but not decoded."""
        payloads: list[bytes] = []
        located: list[Box] = []
        for barcode in self._zx.read_barcodes(grey, formats=self._formats, return_errors=True):
            if barcode.error is None and barcode.valid:
                data = bytes(barcode.bytes)
                if data and data not in payloads:
                    payloads.append(data)
            else:
                p = barcode.position
                xs = (p.top_left.x, p.top_right.x, p.bottom_right.x, p.bottom_left.x)
                ys = (p.top_left.y, p.top_right.y, p.bottom_right.y, p.bottom_left.y)
                if max(xs) - min(xs) >= MIN_SIDE // 2 and max(ys) - min(ys) >= MIN_SIDE // 2:
                    located.append((max(0, min(xs)), max(0, min(ys)), max(xs), max(ys)))
        return payloads, located

    def second_look(self, grey: Any, box: Box) -> list[bytes]:
        cv2 = self._cv2
        crop = _crop(grey, box)
        sigma = 2.0
        if max(crop.shape[:2]) < UPSCALE_BELOW:
            crop = cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
            sigma = 3.0
        sharp = cv2.addWeighted(crop, 2.0, cv2.GaussianBlur(crop, (0, 0), sigma), -1.0, 0)
        payloads, _ = self.read(sharp)
        return payloads


class OpenCvReader:
    """OpenCV's QR detector (``aruco`` or ``classic``)."""

    def __init__(self, cv2: ModuleType, detector: str) -> None:
        self._detector = (cv2.QRCodeDetectorAruco() if detector == "aruco"
                          else cv2.QRCodeDetector())

    def read(self, grey: Any) -> list[bytes]:
        payload, _points, _straight = self._detector.detectAndDecodeBytes(grey)
        return [opencv_raw(bytes(payload))] if payload else []


class QrPipeline:
    """The decoders of one camera, in the order ``mode`` says, with their counts.

    ``clock`` (the driver's) times the OpenCV fallback's interval; the time spent decoding is
    measured with ``time.perf_counter`` whatever the clock.
    """

    def __init__(self, mode: DecoderMode, cv2: ModuleType, *, zxing: ZxingReader | None,
                 opencv: OpenCvReader, opencv_interval_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if mode is not DecoderMode.OPENCV and zxing is None:
            raise ValueError(f"decoder {mode} needs zxing-cpp")
        self.mode = mode
        self._cv2 = cv2
        self._zxing = zxing
        self._opencv = opencv
        self._interval = opencv_interval_s
        self._clock = clock
        self._next_opencv = float("-inf")
        self.counts = DecodeCounts()

    def decode(self, frame: Any) -> Decoded:
        """Payloads in ``frame`` (none: a miss), or ``BadFrame``."""
        c = self.counts
        c.frames += 1
        start = time.perf_counter()
        try:
            grey = as_grey(frame, self._cv2)
            payloads, by = self._run(grey)
        except BadFrame:
            c.bad += 1
            raise
        except (ValueError, TypeError, self._cv2.error) as e:  # a decoder refused the frame
            c.bad += 1
            raise BadFrame("decoder_error", f"{type(e).__name__}: {str(e)[:120]}") from e
        seconds = time.perf_counter() - start
        c.slowest_s = max(c.slowest_s, seconds)
        if by is ReadBy.ZXING:
            c.zxing += 1
        elif by is ReadBy.SECOND_LOOK:
            c.second_look += 1
        elif by is ReadBy.OPENCV:
            c.opencv += 1
        else:
            c.misses += 1
        return Decoded(tuple(payloads), by, seconds)

    def _run(self, grey: Any) -> tuple[list[bytes], ReadBy]:
        if self._zxing is None or self.mode is DecoderMode.OPENCV:
            found = self._try_opencv(grey)
            return found, ReadBy.OPENCV if found else ReadBy.MISS
        t = time.perf_counter()
        try:
            payloads, located = self._zxing.read(grey)
            if payloads:
                return payloads, ReadBy.ZXING
            for box in located[:2]:  # more than two unread symbols in view: not a visitor's
                payloads = self._zxing.second_look(grey, box)
                if payloads:
                    return payloads, ReadBy.SECOND_LOOK
        finally:
            self.counts.zxing_s += time.perf_counter() - t
        if self.mode is DecoderMode.ZXING_OPENCV:
            now = self._clock()
            if now >= self._next_opencv:
                self._next_opencv = now + self._interval
                found = self._try_opencv(_crop(grey, located[0]) if located else grey)
                if found:
                    return found, ReadBy.OPENCV
        return [], ReadBy.MISS

    def _try_opencv(self, grey: Any) -> list[bytes]:
        t = time.perf_counter()
        try:
            return self._opencv.read(grey)
        finally:
            self.counts.opencv_tries += 1
            self.counts.opencv_s += time.perf_counter() - t
