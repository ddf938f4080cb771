"""Appointment QR codes from a camera, a stream or a file: ``driver`` (capture, presentations),
``decode`` (zxing-cpp, OpenCV fallback), ``settings``."""

from drivers.camera_qr.settings import DecoderMode, QrCameraConfig

__all__ = ["DecoderMode", "QrCameraConfig"]
