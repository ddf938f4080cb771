"""QrCamera on real OpenCV capture and real zxing-cpp / OpenCV decoding of QR codes rendered by
the ``qrcode`` package.

Sources are files the tests write: PNG stills and MJPG .avi videos. The driver's clock is
injected and advanced one frame period per poll, so presentation and re-arm behaviour do not
depend on how fast this machine decodes.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import qrcode

from drivers.base import (
    DependencyMissing,
    DeviceState,
    DeviceUnavailable,
    Observation,
    ProtocolError,
    QrRead,
)
from drivers.camera_qr.driver import QrCamera
from drivers.camera_qr.settings import QrCameraConfig
from drivers.registry import driver_class
from drivers.supervisor import Backoff, DeviceRunner
from gated.app.logs import configure_logging, shutdown_logging
from gated.config import LogFormat, LogLevel

cv2 = pytest.importorskip("cv2")

pytestmark = pytest.mark.timeout(60)

SIZE = 360
PAYLOAD_GBK = "预约号:20240601-A017".encode("gbk")  # not valid UTF-8 (预约 alone would be)
PAYLOAD_B = b"APPT-20240601-B042"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def qr_frame(payload: bytes | None) -> np.ndarray:
    """A SIZE x SIZE BGR frame: the QR centred on white, or plain white for None."""
    frame = np.full((SIZE, SIZE, 3), 255, dtype=np.uint8)
    if payload is None:
        return frame
    qr = qrcode.QRCode(border=4, box_size=6)
    qr.add_data(payload)
    qr.make(fit=True)
    img = np.array(qr.make_image(fill_color="black", back_color="white").convert("L"))
    gray = cv2.resize(img, (SIZE - 40, SIZE - 40), interpolation=cv2.INTER_NEAREST)
    frame[20:SIZE - 20, 20:SIZE - 20] = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    return frame


def write_png(path: Path, payload: bytes | None) -> str:
    assert cv2.imwrite(str(path), qr_frame(payload))
    return str(path)


def write_avi(path: Path, frames: Sequence[bytes | None]) -> str:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (SIZE, SIZE))
    assert out.isOpened()
    cache: dict[bytes | None, np.ndarray] = {}
    for p in frames:
        if p not in cache:
            cache[p] = qr_frame(p)
        out.write(cache[p])
    out.release()
    return str(path)


def camera(source: str, *, fps: float = 10.0, detector: str = "aruco",
           rearm_s: float = 2.0, decoder: str = "zxing") -> tuple[QrCamera, FakeClock]:
    cfg = QrCameraConfig.model_validate(
        {"type": "camera_qr", "source": source, "fps": fps, "detector": detector,
         "rearm_s": rearm_s, "decoder": decoder})
    clock = FakeClock()
    return QrCamera("cam1", cfg, clock=clock), clock


def run_frames(cam: QrCamera, clock: FakeClock, n: int) -> list[Observation]:
    out: list[Observation] = []
    for _ in range(n):
        out += cam.poll(0.0)
        clock.t += 1.0 / cam.cfg.fps
    return out


@pytest.mark.parametrize(("decoder", "detector"), [
    ("zxing+opencv", "aruco"), ("zxing", "aruco"), ("opencv", "aruco"), ("opencv", "classic")])
def test_still_image_gbk_payload_is_read_once(tmp_path: Path, decoder: str,
                                              detector: str) -> None:
    cam, clock = camera(write_png(tmp_path / "a.png", PAYLOAD_GBK), detector=detector,
                        decoder=decoder)
    with cam:
        out = run_frames(cam, clock, 30)  # 3 s of the same code in view
        assert cam.mode == decoder and cam.fault is None
    assert out == [QrRead(PAYLOAD_GBK)]
    c = cam.counts
    assert cam.frames == c.frames == 30
    assert (c.zxing, c.opencv) == ((0, 30) if decoder == "opencv" else (30, 0))
    assert c.misses == c.bad == 0


def test_no_code_no_read_and_opencv_once_a_second(tmp_path: Path) -> None:
    blank = write_png(tmp_path / "blank.png", None)
    cam, clock = camera(blank)  # 10 fps, the default decoder: zxing
    with cam:
        assert run_frames(cam, clock, 30) == []
    assert (cam.counts.frames, cam.counts.misses, cam.counts.opencv_tries) == (30, 30, 0)
    cam, clock = camera(blank, decoder="zxing+opencv")
    with cam:
        assert run_frames(cam, clock, 30) == []
    assert (cam.counts.frames, cam.counts.misses, cam.counts.opencv_tries) == (30, 30, 3)


def test_video_presentations_rearm_and_end_of_stream(tmp_path: Path) -> None:
    # at 10 fps: A 1 s, nothing 1 s (> re-arm), A 0.5 s, B 0.3 s, A 0.2 s (A gone < re-arm)
    frames = ([PAYLOAD_GBK] * 10 + [None] * 10 + [PAYLOAD_GBK] * 5 + [PAYLOAD_B] * 3
              + [PAYLOAD_GBK] * 2)
    cam, clock = camera(write_avi(tmp_path / "v.avi", frames), fps=10, rearm_s=0.5)
    with cam:
        out = run_frames(cam, clock, len(frames))
        with pytest.raises(DeviceUnavailable) as err:
            cam.poll(0.0)
    assert err.value.reason == "source_ended"
    assert [o.payload for o in out if isinstance(o, QrRead)] == [
        PAYLOAD_GBK, PAYLOAD_GBK, PAYLOAD_B]


def test_frames_are_rate_limited_to_fps(tmp_path: Path) -> None:
    cam, clock = camera(write_png(tmp_path / "a.png", PAYLOAD_B), fps=5)
    with cam:
        cam.poll(0.0)
        for _ in range(5):  # no time passes: no new frame is taken
            assert cam.poll(0.0) == []
        assert cam.frames == 1
        clock.t += 0.2
        cam.poll(0.0)
        assert cam.frames == 2


@pytest.mark.parametrize("source", ["/nonexistent/q.png", "/nonexistent/v.avi", "/dev/video97"])
def test_missing_source_is_unavailable(source: str) -> None:
    cam, _ = camera(source)
    with pytest.raises(DeviceUnavailable) as err:
        cam.open()
    assert err.value.reason == "source_missing"
    cam.close()


def test_unreadable_image_file_is_unavailable(tmp_path: Path) -> None:
    bad = tmp_path / "torn.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not the rest of a PNG" * 8)
    cam, _ = camera(str(bad))
    with pytest.raises(DeviceUnavailable) as err:
        cam.open()
    assert err.value.reason == "source_unreadable"
    cam.close()


def test_frames_too_small_for_a_code_are_skipped_then_a_protocol_error(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.png"
    assert cv2.imwrite(str(tiny), np.full((12, 16, 3), 128, np.uint8))
    buf = io.StringIO()
    configure_logging(LogLevel.INFO, LogFormat.JSON, stream=buf)
    try:
        cam, clock = camera(str(tiny))
        with cam:
            assert run_frames(cam, clock, QrCamera.BAD_FRAME_RUN - 1) == []
            with pytest.raises(ProtocolError) as err:
                cam.poll(0.0)
    finally:
        shutdown_logging()
    assert err.value.reason == "bad_frames"
    assert cam.counts.bad == QrCamera.BAD_FRAME_RUN
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    rejected = [e for e in lines if e["event"] == "qr_frame_rejected"]
    assert len(rejected) == 1 and rejected[0]["reason"] == "too_small"  # once per run


def test_bad_frames_degrade_then_reopen_under_the_supervisor(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.png"
    assert cv2.imwrite(str(tiny), np.full((12, 16, 3), 128, np.uint8))
    cfg = QrCameraConfig.model_validate({"type": "camera_qr", "source": str(tiny), "fps": 30.0})
    states: list[tuple[DeviceState, str]] = []
    runner = DeviceRunner(
        "cam1", lambda: QrCamera("cam1", cfg), on_observation=lambda _n, _o: None,
        on_state=lambda _n, _old, new, reason: states.append((new, reason.split(":")[0])),
        backoff=Backoff(initial_s=0.05, max_s=0.1))
    runner.start()
    try:
        end = time.monotonic() + 10
        while (DeviceState.OFFLINE, "bad_frames") not in states:
            assert time.monotonic() < end, f"states {states}"
            time.sleep(0.02)
    finally:
        runner.stop()
    degraded = states.index((DeviceState.DEGRADED, "bad_frames"))
    assert states.index((DeviceState.OFFLINE, "bad_frames")) > degraded


def test_without_zxing_the_camera_decodes_with_opencv_and_is_degraded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zxingcpp", None)  # what a board without the wheel has
    source = write_png(tmp_path / "a.png", PAYLOAD_GBK)
    buf = io.StringIO()
    configure_logging(LogLevel.INFO, LogFormat.JSON, stream=buf)
    cfg = QrCameraConfig.model_validate({"type": "camera_qr", "source": source, "fps": 30.0})
    seen: list[Observation] = []
    states: list[tuple[DeviceState, str]] = []
    runner = DeviceRunner(
        "cam1", lambda: QrCamera("cam1", cfg), on_observation=lambda _n, o: seen.append(o),
        on_state=lambda _n, _old, new, reason: states.append((new, reason)))
    runner.start()
    try:
        end = time.monotonic() + 10
        while not seen:
            assert time.monotonic() < end, f"no read; states {states}"
            time.sleep(0.02)
    finally:
        runner.stop()
        shutdown_logging()
    assert seen == [QrRead(PAYLOAD_GBK)]
    assert (DeviceState.DEGRADED, "zxing_missing") in states
    assert DeviceState.READY not in [s for s, _ in states]
    events = [json.loads(line) for line in buf.getvalue().splitlines()]
    missing = [e for e in events if e["event"] == "qr_zxing_missing"]
    assert missing and missing[0]["using"] == "opencv"
    assert [e["decoder"] for e in events if e["event"] == "qr_camera_open"] == ["opencv"]


def test_unreadable_video_is_unavailable(tmp_path: Path) -> None:
    bad = tmp_path / "junk.avi"
    bad.write_bytes(b"this is no video" * 64)
    cam, _ = camera(str(bad))
    with pytest.raises(DeviceUnavailable):
        cam.open()
        cam.poll(0.0)
    cam.close()


def test_opencv_missing_disables_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)
    cam, _ = camera("/dev/video0")
    with pytest.raises(DependencyMissing):
        cam.open()


def test_registry_names() -> None:
    from drivers.pcsc_badge.driver import PcscBadgeReader

    assert driver_class("camera_qr") is QrCamera
    assert driver_class("pcsc_badge") is PcscBadgeReader


@pytest.mark.parametrize("decoder", ["zxing", "zxing+opencv", "opencv"])
@pytest.mark.parametrize("fmt", [LogFormat.JSON, LogFormat.CONSOLE])
def test_payload_never_logged(tmp_path: Path, fmt: LogFormat, decoder: str) -> None:
    buf = io.StringIO()
    configure_logging(LogLevel.DEBUG, fmt, stream=buf)
    try:
        cam, clock = camera(write_png(tmp_path / "b.png", PAYLOAD_B), decoder=decoder)
        with cam:
            assert run_frames(cam, clock, 3) == [QrRead(PAYLOAD_B)]
    finally:
        shutdown_logging()
    text = buf.getvalue()
    assert "qr_read" in text and "qr_camera_closed" in text  # with the decode counts
    assert "B042" not in text


def test_end_of_stream_goes_offline_and_reopens_under_the_supervisor(tmp_path: Path) -> None:
    source = write_avi(tmp_path / "loop.avi", [PAYLOAD_B] * 3 + [None] * 3)
    cfg = QrCameraConfig.model_validate(
        {"type": "camera_qr", "source": source, "fps": 30.0})
    seen: list[Observation] = []
    states: list[DeviceState] = []
    runner = DeviceRunner(
        "cam1", lambda: QrCamera("cam1", cfg),
        on_observation=lambda _n, obs: seen.append(obs),
        on_state=lambda _n, _old, new, _reason: states.append(new),
        backoff=Backoff(initial_s=0.05, max_s=0.1))
    runner.start()
    try:
        end = time.monotonic() + 10
        while len([o for o in seen if isinstance(o, QrRead)]) < 2:
            assert time.monotonic() < end, f"no second read; states {states}"
            time.sleep(0.02)
    finally:
        runner.stop()
    offline = states.index(DeviceState.OFFLINE)  # the file ended, then was reopened
    assert DeviceState.READY in states[:offline] and DeviceState.READY in states[offline:]
