"""Appointment QR codes from a camera, a stream or a file: ``driver``, ``settings``."""

from drivers.camera_qr.settings import QrCameraConfig

__all__ = ["QrCameraConfig"]
