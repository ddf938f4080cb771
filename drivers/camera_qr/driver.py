"""Appointment QR codes from a camera, an RTSP stream or a file, decoded with OpenCV.

OpenCV is imported in ``open()`` only (it is heavy and optional): without it the device is
DISABLED (``DependencyMissing``), the rest of the daemon runs. Frames are taken at most
``cfg.fps`` per second — ``poll()`` sleeps in ``Device.idle()`` between frames — and decoded
with ``detectAndDecodeBytes`` because appointment payloads may be GBK, not UTF-8.

One ``QrRead`` per presentation: a payload is reported when it appears and again only after
it has been out of view for ``cfg.rearm_s`` seconds, so a code held in front of the camera for
ten seconds opens the gate once. A camera that stops giving frames (unplugged, stream dropped,
end of a video file) raises ``DeviceUnavailable``; the supervisor reopens it with backoff.
A still image file is a frame that never changes (for demos and tests).

Payloads never reach a log line: only their length.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from drivers.base import DeviceUnavailable, Observation, QrRead, QrScanner, load_optional
from drivers.camera_qr.settings import QrCameraConfig

log = structlog.get_logger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
_VIDEO_NODE = re.compile(r"^/dev/video(\d+)$")


class QrCamera(QrScanner):
    """One camera. Used by one thread; see ``drivers.base.Device``."""

    def __init__(self, name: str, cfg: QrCameraConfig, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name)
        self.cfg = cfg
        self._clock = clock
        self._cv2: Any = None
        self._cap: Any = None
        self._still: Any = None  # the frame of an image-file source
        self._detector: Any = None
        self._next_frame = 0.0
        self._last_seen: dict[bytes, float] = {}
        self.frames = 0  # frames decoded since open(), for benches and tests
        self.bad_frames = 0  # frames OpenCV could not decode (skipped)

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        cv2 = self._cv2 = load_optional("cv2", "camera")
        source = self.cfg.source
        if Path(source).suffix.lower() in IMAGE_SUFFIXES:
            self._still = cv2.imread(source, cv2.IMREAD_COLOR)
            if self._still is None:
                raise DeviceUnavailable(f"{self.name}: cannot read image {source!r}",
                                        reason="source_missing")
        else:
            self._cap = self._capture(cv2, source)
        self._detector = (cv2.QRCodeDetectorAruco() if self.cfg.detector == "aruco"
                          else cv2.QRCodeDetector())
        self._next_frame = self._clock()
        self._last_seen.clear()
        self.frames = 0
        log.info("qr_camera_open", device=self.name, detector=self.cfg.detector,
                 kind="image" if self._still is not None else "video")

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
        self._detector = None  # poll() after close() is "not open", not an AttributeError

    # ------------------------------------------------------------------ polling
    def poll(self, timeout: float) -> Sequence[Observation]:
        if self._detector is None:
            raise DeviceUnavailable(f"{self.name}: not open", reason="not_open")
        now = self._clock()
        if now < self._next_frame:
            self.idle(min(timeout, self._next_frame - now))
            if self._clock() < self._next_frame:
                return []
        self._next_frame = max(self._next_frame + 1.0 / self.cfg.fps, self._clock())
        frame = self._grab()
        try:
            payload, _points, _straight = self._detector.detectAndDecodeBytes(frame)
        except self._cv2.error as e:  # one odd frame (size, format): skip it, keep watching
            self.bad_frames += 1
            log.warning("qr_frame_failed", device=self.name, error=str(e)[:200])
            return []
        self.frames += 1
        return self._presentations(bytes(payload) if payload else b"", self._clock())

    def _grab(self) -> Any:
        if self._still is not None:
            return self._still
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise DeviceUnavailable(f"{self.name}: no frame (unplugged or end of stream)",
                                    reason="source_ended")
        return frame

    def _presentations(self, payload: bytes, now: float) -> list[Observation]:
        """A payload counts when it was not seen within ``rearm_s``; forget stale ones."""
        rearm = self.cfg.rearm_s
        out: list[Observation] = []
        if payload:
            last = self._last_seen.get(payload)
            if last is None or now - last > rearm:
                log.info("qr_read", device=self.name, length=len(payload))
                out.append(QrRead(payload))
            self._last_seen[payload] = now
        for old in [p for p, t in self._last_seen.items() if now - t > rearm]:
            del self._last_seen[old]
        return out
