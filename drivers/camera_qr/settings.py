"""``[devices.<name>]`` with ``type = "camera_qr"``: appointment QR codes from a camera."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from drivers.settings import DeviceSettings


class QrCameraConfig(DeviceSettings):
    reads_appointment_codes = True
    type: Literal["camera_qr"]
    source: str = Field(description="/dev/video0, an rtsp:// URL, or an image/video file")
    fps: float = Field(default=5.0, gt=0, le=30)
    detector: Literal["aruco", "classic"] = "aruco"
    rearm_s: float = Field(
        default=2.0, gt=0, le=60,
        description="a payload must be out of view this long before it counts as a new "
        "presentation (a QR held in front of the camera is read once)")
