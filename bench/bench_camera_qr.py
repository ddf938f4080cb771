"""QR decode time per 1280x720 frame, next to baselines measured in the same run.

Figures: ``QrCamera.poll`` (aruco detector, the default) on a still 1280x720 frame with a QR
code, against (a) the bare ``QRCodeDetectorAruco.detectAndDecodeBytes`` on the same frame (the
driver's overhead) and (b) the classic ``QRCodeDetector``. The daemon decodes ``fps`` frames a
second, so decode time x fps is the CPU share one camera costs. Plain script:
``.venv/bin/python bench/bench_camera_qr.py``; exits 0 regardless of timing.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.camera_qr.driver import QrCamera
from drivers.camera_qr.settings import QrCameraConfig

ROUNDS = 40


def frame_with_qr(cv2: Any, np: Any) -> Any:
    import qrcode

    qr = qrcode.QRCode(border=4, box_size=8)
    qr.add_data("预约:20240601-A017".encode("gbk"))
    qr.make(fit=True)
    img = np.array(qr.make_image().convert("L"))
    img = cv2.resize(img, (300, 300), interpolation=cv2.INTER_NEAREST)
    frame = np.full((720, 1280, 3), 200, dtype=np.uint8)
    frame[200:500, 700:1000] = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return frame


def timed(fn: Callable[[], object]) -> list[float]:
    fn()  # warm up
    out = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def show(label: str, ms: list[float]) -> None:
    ms = sorted(ms)
    print(f"{label:<44} median {statistics.median(ms):7.2f} ms   "
          f"p90 {ms[int(len(ms) * 0.9) - 1]:7.2f} ms")


def main() -> int:
    try:
        import cv2
        import numpy as np
    except ImportError as e:
        print(f"OpenCV not installed ({e}); nothing to measure")
        return 0
    frame = frame_with_qr(cv2, np)
    aruco, classic = cv2.QRCodeDetectorAruco(), cv2.QRCodeDetector()
    assert aruco.detectAndDecodeBytes(frame)[0], "aruco did not decode the bench frame"
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "frame.png")
        cv2.imwrite(path, frame)
        clock = [0.0]
        cam = QrCamera("bench", QrCameraConfig(type="camera_qr", source=path, fps=30.0),
                       clock=lambda: clock[0])

        def poll() -> None:
            clock[0] += 1.0
            cam.poll(0.0)

        with cam:
            driver = timed(poll)
    print(f"cv2 {cv2.__version__}, 1280x720 frame, {ROUNDS} rounds")
    show("baseline: classic detectAndDecodeBytes", timed(
        lambda: classic.detectAndDecodeBytes(frame)))
    show("baseline: aruco detectAndDecodeBytes", timed(
        lambda: aruco.detectAndDecodeBytes(frame)))
    show("QrCamera.poll (aruco, still frame)", driver)
    return 0


if __name__ == "__main__":
    sys.exit(main())
