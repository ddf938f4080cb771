"""``[devices.<name>]`` with ``type = "camera_qr"``: appointment QR codes from a camera."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import Field

from drivers.settings import DeviceSettings


class DecoderMode(enum.StrEnum):
    """Which decoders look at a frame (see ``drivers.camera_qr.decode``; the README has the
    measurements the default follows)."""

    #: zxing-cpp only, with its second look at a symbol it found but could not read: the
    #: default (on the bench set OpenCV read 1 frame in 240 that this misses)
    ZXING = "zxing"
    #: OpenCV's detector on every frame: the decoder before zxing-cpp; reads fewer, 13-15x the CPU
    OPENCV = "opencv"
    #: zxing-cpp on every frame, and OpenCV on a frame zxing did not read, rate-limited
    ZXING_OPENCV = "zxing+opencv"


class QrCameraConfig(DeviceSettings):
    reads_appointment_codes = True
    type: Literal["camera_qr"]
    source: str = Field(description="/dev/video0, an rtsp:// URL, or an image/video file")
    fps: float = Field(default=5.0, gt=0, le=30)
    decoder: DecoderMode = Field(
        default=DecoderMode.ZXING,
        description="zxing | opencv | zxing+opencv; without the zxing-cpp package the camera "
        "decodes with OpenCV and is DEGRADED (zxing_missing)")
    detector: Literal["aruco", "classic"] = Field(
        default="aruco", description="OpenCV's detector, where OpenCV decodes")
    opencv_interval_s: float = Field(
        default=1.0, ge=0, le=60,
        description="zxing+opencv: OpenCV looks at a frame zxing did not read at most this "
        "often, so a camera pointed at nothing pays one OpenCV decode a second, not one a "
        "frame")
    rearm_s: float = Field(
        default=2.0, gt=0, le=60,
        description="a payload must be out of view this long before it counts as a new "
        "presentation (a QR held in front of the camera is read once)")
