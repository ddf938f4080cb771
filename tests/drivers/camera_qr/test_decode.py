"""zxing-cpp, OpenCV and the pipeline on frames of the benchmark's own set.

The frames come from ``bench/qr_frameset.py`` (seeded: frame 7 of a family is the same pixels
here as in ``bench/bench_camera_qr.py``), so the table below is a few of the very frames the
benchmark counts, one per distortion, each read by both decoders there. The decoders are the
real libraries; the OpenCV fallback's interval runs on an injected clock.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import zxingcpp

from drivers.camera_qr.decode import (
    BadFrame,
    Decoded,
    OpenCvReader,
    QrPipeline,
    ReadBy,
    ZxingReader,
    as_grey,
    opencv_raw,
)
from drivers.camera_qr.settings import DecoderMode

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import qr_frameset
from qr_frameset import Distortion

pytestmark = pytest.mark.timeout(120)

#: (family, index): one frame of each distortion that zxing and OpenCV's aruco both read
TABLE = [
    (Distortion.ROTATED, 1),
    (Distortion.BLURRED, 1),  # motion blur
    (Distortion.BLURRED, 2),  # defocus
    (Distortion.PERSPECTIVE, 8),  # tilted about 30 degrees
    (Distortion.LOW_CONTRAST, 10),
    (Distortion.SMALL, 4),  # 2.7 px per module
    (Distortion.GBK, 4),
    (Distortion.PHONE_GLARE, 7),
    (Distortion.MIXED, 7),
]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def pipeline(mode: DecoderMode, clock: FakeClock | None = None,
             interval: float = 1.0) -> QrPipeline:
    return QrPipeline(mode, cv2, zxing=ZxingReader(zxingcpp, cv2),
                      opencv=OpenCvReader(cv2, "aruco"), opencv_interval_s=interval,
                      clock=clock or FakeClock())


def frame(d: Distortion, i: int) -> qr_frameset.Frame:
    return qr_frameset.pick(d, [i])[0]


@pytest.mark.parametrize(("family", "index"), TABLE, ids=[f"{d}-{i}" for d, i in TABLE])
def test_both_decoders_and_the_pipeline_read_the_frame(family: Distortion, index: int) -> None:
    f = frame(family, index)
    grey = as_grey(f.image, cv2)
    assert f.payload is not None
    assert ZxingReader(zxingcpp, cv2).read(grey)[0] == [f.payload]
    assert OpenCvReader(cv2, "aruco").read(grey) == [f.payload]
    for mode in DecoderMode:
        decoded = pipeline(mode).decode(f.image)
        assert decoded.payloads == (f.payload,), mode
        assert decoded.by is (ReadBy.OPENCV if mode is DecoderMode.OPENCV else ReadBy.ZXING)


@pytest.mark.parametrize("mode", list(DecoderMode))
def test_gbk_payload_round_trips_as_bytes(mode: DecoderMode) -> None:
    f = frame(Distortion.GBK, 4)
    assert f.payload is not None
    with pytest.raises(UnicodeDecodeError):
        f.payload.decode("utf-8")  # the bytes must come through untouched, not via text
    decoded = pipeline(mode).decode(f.image)
    assert decoded.payloads == (f.payload,)
    assert "预约" in decoded.payloads[0].decode("gbk")


def _pure(payload: bytes) -> np.ndarray:
    sym = qr_frameset.symbol(payload)
    return cv2.resize(sym, None, fx=6, fy=6, interpolation=cv2.INTER_NEAREST)


@pytest.mark.parametrize("payload", [
    "预约号:20261201-A017".encode("gbk"),  # GBK, not UTF-8: OpenCV 5 transcodes it
    "预约:20240601".encode("gbk"),  # GBK that happens to be valid UTF-8: left alone
    "预约号 社保".encode(),
    b"\xff\xfe\x00binary\x80",
    b"APPT-20261201-0042",
], ids=["gbk", "gbk-valid-utf8", "utf8", "binary", "ascii"])
def test_opencv_bytes_are_the_symbols_bytes(payload: bytes) -> None:
    assert OpenCvReader(cv2, "aruco").read(_pure(payload)) == [payload]
    assert OpenCvReader(cv2, "classic").read(_pure(payload)) == [payload]
    assert ZxingReader(zxingcpp, cv2).read(_pure(payload))[0] == [payload]


def test_opencv_cannot_tell_utf8_latin_letters_from_latin1() -> None:
    """The one loss ``opencv_raw`` documents: OpenCV returns UTF-8 ``é`` and Latin-1 ``é``
    alike; zxing reads both as they are."""
    utf8, latin1 = "é".encode(), b"\xe9"
    assert opencv_raw(b"\xc3\xa9") == latin1
    assert OpenCvReader(cv2, "aruco").read(_pure(utf8)) == [latin1]
    assert ZxingReader(zxingcpp, cv2).read(_pure(utf8))[0] == [utf8]
    assert ZxingReader(zxingcpp, cv2).read(_pure(latin1))[0] == [latin1]


def test_second_look_reads_a_symbol_the_first_look_located() -> None:
    f = frame(Distortion.BLURRED, 26)  # defocus: a blur of sigma 2.6 px on 5 px modules
    zx = ZxingReader(zxingcpp, cv2)
    payloads, located = zx.read(as_grey(f.image, cv2))
    assert payloads == [] and located  # found, not decoded
    decoded = pipeline(DecoderMode.ZXING).decode(f.image)
    assert decoded == Decoded((f.payload,), ReadBy.SECOND_LOOK)


def test_opencv_fallback_reads_a_frame_zxing_misses() -> None:
    f = frame(Distortion.PHONE_GLARE, 15)  # the reflection over the finder patterns
    assert pipeline(DecoderMode.ZXING).decode(f.image).by is ReadBy.MISS
    p = pipeline(DecoderMode.ZXING_OPENCV)
    decoded = p.decode(f.image)
    assert (decoded.payloads, decoded.by) == ((f.payload,), ReadBy.OPENCV)
    assert (p.counts.zxing, p.counts.opencv, p.counts.opencv_tries) == (0, 1, 1)


@pytest.mark.parametrize(("mode", "interval", "tries"), [
    (DecoderMode.ZXING_OPENCV, 1.0, 5),  # 25 frames at 5 fps: once a second
    (DecoderMode.ZXING_OPENCV, 0.0, 25),  # every frame zxing did not read
    (DecoderMode.ZXING, 1.0, 0),
    (DecoderMode.OPENCV, 1.0, 25),  # OpenCV alone decodes every frame
])
def test_opencv_looks_at_empty_frames_once_per_interval(mode: DecoderMode, interval: float,
                                                         tries: int) -> None:
    clock = FakeClock()
    p = pipeline(mode, clock, interval)
    empty = qr_frameset.pick(Distortion.EMPTY, [0, 1, 2, 3, 4], per_family=40)
    for k in range(25):
        assert p.decode(empty[k % 5].image).payloads == ()
        clock.t += 0.2
    c = p.counts
    assert (c.frames, c.misses, c.opencv_tries) == (25, 25, tries)
    assert (c.zxing, c.second_look, c.opencv, c.bad) == (0, 0, 0, 0)
    assert c.zxing_s > 0 if mode is not DecoderMode.OPENCV else c.zxing_s == 0


@pytest.mark.parametrize(("bad", "reason"), [
    (None, "not_an_image"),
    ([[0, 255], [255, 0]], "not_an_image"),
    (np.zeros((0, 0, 3), np.uint8), "too_small"),
    (np.zeros((10, 10, 3), np.uint8), "too_small"),
    (np.zeros((720, 1280), np.float32), "not_8_bit"),
    (np.zeros((720, 1280), np.uint16), "not_8_bit"),
    (np.zeros((720, 1280, 2), np.uint8), "odd_channels"),
    (np.zeros((4, 720, 1280), np.uint8), "odd_channels"),
], ids=["none", "list", "empty", "tiny", "float", "16bit", "2ch", "4d"])
def test_a_garbage_frame_is_a_bad_frame(bad: object, reason: str) -> None:
    for mode in DecoderMode:
        p = pipeline(mode)
        with pytest.raises(BadFrame) as err:
            p.decode(bad)
        assert err.value.reason == reason
        assert (p.counts.frames, p.counts.bad) == (1, 1)


def test_bgra_grey_and_strided_frames_are_decoded() -> None:
    f = frame(Distortion.ROTATED, 1)
    grey = cv2.cvtColor(f.image, cv2.COLOR_BGR2GRAY)
    for variant in (cv2.cvtColor(f.image, cv2.COLOR_BGR2BGRA), grey, grey[:, :, None],
                    np.ascontiguousarray(f.image[:, ::-1])[:, ::-1]):
        assert pipeline(DecoderMode.ZXING_OPENCV).decode(variant).payloads == (f.payload,)
