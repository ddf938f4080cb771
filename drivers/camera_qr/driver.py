"""Appointment QR codes from a camera, an RTSP stream or a file.

OpenCV captures (V4L2, RTSP through FFmpeg, files) and is imported in ``open()`` only (it is
heavy and optional): without it the device is DISABLED (``DependencyMissing``), the rest of the
daemon runs. Frames are decoded by ``drivers.camera_qr.decode``: zxing-cpp, with OpenCV's
detector as an optional rate-limited fallback (``decoder``). Without the zxing-cpp package (a
board with no wheel for it) the camera decodes with OpenCV alone, logs ``qr_zxing_missing``
and stays DEGRADED with reason ``zxing_missing`` so the slower decoding shows in the device
status.

Frames are taken at most ``cfg.fps`` per second — ``poll()`` sleeps in ``Device.idle()``
between frames. One ``QrRead`` per presentation: a payload is reported when it appears and
again only after it has been out of view for ``cfg.rearm_s`` seconds, so a code held in front
of the camera for ten seconds opens the gate once. A camera that stops giving frames
(unplugged, stream dropped, end of a video file) raises ``DeviceUnavailable``; the supervisor
reopens it with backoff. A still image file is a frame that never changes (demos and tests).
Frames no decoder can take (empty, tiny, not 8-bit) are skipped and counted; a run of
``BAD_FRAME_RUN`` of them raises ``ProtocolError`` (``bad_frames``: DEGRADED, then reopened).

Payloads never reach a log line: only their length.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import structlog

from drivers.base import (
    DependencyMissing,
    DeviceUnavailable,
    Observation,
    ProtocolError,
    QrRead,
    QrScanner,
    load_optional,
)
from drivers.camera_qr.decode import (
    BadFrame,
    DecodeCounts,
    OpenCvReader,
    QrPipeline,
    ZxingReader,
)
from drivers.camera_qr.settings import DecoderMode, QrCameraConfig

log = structlog.get_logger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
_VIDEO_NODE = re.compile(r"^/dev/video(\d+)$")
ZXING_MISSING = "zxing_missing"


class QrCamera(QrScanner):
    """One camera. Used by one thread; see ``drivers.base.Device``."""

    #: bad frames in a row before the camera counts as broken (2 s at the default 5 fps)
    BAD_FRAME_RUN: ClassVar[int] = 10

    def __init__(self, name: str, cfg: QrCameraConfig, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name)
        self.cfg = cfg
        self._clock = clock
        self._cv2: Any = None
        self._cap: Any = None
        self._still: Any = None  # the frame of an image-file source
        self._pipeline: QrPipeline | None = None
        self._next_frame = 0.0
        self._last_seen: dict[bytes, float] = {}
        self._bad_run = 0
        self.counts = DecodeCounts()

    @property
    def frames(self) -> int:
        """Frames grabbed and handed to the decoders since ``open()``."""
        return self.counts.frames

    @property
    def mode(self) -> DecoderMode | None:
        """The decoders in use (OpenCV alone when zxing-cpp is missing); None while closed."""
        return self._pipeline.mode if self._pipeline is not None else None

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        cv2 = self._cv2 = load_optional("cv2", "camera")
        pipeline = self._build_pipeline(cv2)
        source = self.cfg.source
        if Path(source).suffix.lower() in IMAGE_SUFFIXES:
            if not Path(source).is_file():
                raise DeviceUnavailable(f"{self.name}: {source!r} does not exist",
                                        reason="source_missing")
            self._still = cv2.imread(source, cv2.IMREAD_COLOR)
            if self._still is None:
                raise DeviceUnavailable(f"{self.name}: cannot read image {source!r}",
                                        reason="source_unreadable")
        else:
            self._cap = self._capture(cv2, source)
        self._pipeline = pipeline
        self.counts = pipeline.counts
        self._next_frame = self._clock()
        self._last_seen.clear()
        self._bad_run = 0
        log.info("qr_camera_open", device=self.name, decoder=str(pipeline.mode),
                 detector=self.cfg.detector, kind="image" if self._still is not None else "video")

    def _build_pipeline(self, cv2: Any) -> QrPipeline:
        mode = self.cfg.decoder
        zxing = None
        if mode is not DecoderMode.OPENCV:
            try:
                zxing = ZxingReader(load_optional("zxingcpp", "camera"), cv2)
            except DependencyMissing as e:
                log.warning("qr_zxing_missing", device=self.name, decoder=str(mode),
                            using=str(DecoderMode.OPENCV), error=str(e)[:200])
                self.fault = ZXING_MISSING
                mode = DecoderMode.OPENCV
        return QrPipeline(mode, cv2, zxing=zxing, opencv=OpenCvReader(cv2, self.cfg.detector),
                          opencv_interval_s=self.cfg.opencv_interval_s, clock=self._clock)

    def _capture(self, cv2: Any, source: str) -> Any:
        node = _VIDEO_NODE.match(source)
        if node is not None:
            if not Path(source).exists():
                raise DeviceUnavailable(f"{self.name}: {source} does not exist",
                                        reason="source_missing")
            cap = cv2.VideoCapture(int(node.group(1)), cv2.CAP_V4L2)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # decode the newest frame, not a stale one
        elif "://" in source:
            cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG)
        else:
            if not Path(source).exists():
                raise DeviceUnavailable(f"{self.name}: {source!r} does not exist",
                                        reason="source_missing")
            cap = cv2.VideoCapture(source)
        if not cap.isOpened():
            cap.release()
            raise DeviceUnavailable(f"{self.name}: cannot open video source",
                                    reason="source_unavailable")
        return cap

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
        self._still = None
        if self._pipeline is not None:
            log.info("qr_camera_closed", device=self.name, decoder=str(self._pipeline.mode),
                     **self.counts.as_dict())
        self._pipeline = None  # poll() after close() is "not open", not an AttributeError

    # ------------------------------------------------------------------ polling
    def poll(self, timeout: float) -> Sequence[Observation]:
        pipeline = self._pipeline
        if pipeline is None:
            raise DeviceUnavailable(f"{self.name}: not open", reason="not_open")
        now = self._clock()
        if now < self._next_frame:
            self.idle(min(timeout, self._next_frame - now))
            if self._clock() < self._next_frame:
                return []
        self._next_frame = max(self._next_frame + 1.0 / self.cfg.fps, self._clock())
        frame = self._grab()
        try:
            decoded = pipeline.decode(frame)
        except BadFrame as e:
            return self._bad_frame(e)
        self._bad_run = 0
        return self._presentations(decoded.payloads, self._clock())

    def _bad_frame(self, e: BadFrame) -> list[Observation]:
        """Skip one frame the decoders cannot take; a run of them means a broken camera."""
        self._bad_run += 1
        if self._bad_run == 1:
            log.warning("qr_frame_rejected", device=self.name, reason=e.reason, error=str(e))
        if self._bad_run >= self.BAD_FRAME_RUN:
            raise ProtocolError(f"{self.name}: {self._bad_run} frames in a row no decoder can "
                                f"take ({e})", reason="bad_frames")
        return []

    def _grab(self) -> Any:
        if self._still is not None:
            return self._still
        try:
            ok, frame = self._cap.read()
        except self._cv2.error as e:  # a backend that raises instead of returning False
            raise DeviceUnavailable(f"{self.name}: capture failed: {str(e)[:200]}",
                                    reason="source_ended") from e
        if not ok or frame is None:
            raise DeviceUnavailable(f"{self.name}: no frame (unplugged or end of stream)",
                                    reason="source_ended")
        return frame

    def _presentations(self, payloads: Sequence[bytes], now: float) -> list[Observation]:
        """A payload counts when it was not seen within ``rearm_s``; forget stale ones."""
        rearm = self.cfg.rearm_s
        out: list[Observation] = []
        for payload in payloads:
            last = self._last_seen.get(payload)
            if last is None or now - last > rearm:
                log.info("qr_read", device=self.name, length=len(payload))
                out.append(QrRead(payload))
            self._last_seen[payload] = now
        for old in [p for p, t in self._last_seen.items() if now - t > rearm]:
            del self._last_seen[old]
        return out
