"""A seeded set of 1280x720 camera frames holding appointment QR codes, as a booth camera sees
them: for ``bench/bench_camera_qr.py`` and the camera driver's tests.

Why generated and not photographed: a set anyone can rebuild bit for bit (``generate(seed=...)``)
lets two decoders be compared on the same frames in one run, and lets the tests pick a few of
the very frames the benchmark counts. The codes are real: the ``qrcode`` package encodes the
payloads (short references, GBK text that is not UTF-8, and ``GQ1.`` codes signed by
``gated.policy.sign_code`` as the appointment system prints them), and the symbol is put into
a booth scene through a homography and degraded the way a camera degrades it.

Each ``Distortion`` is one family; within a family the severity rises from 0 to 1 over its
frames, so a decode rate says how far along each decoder still reads, not just "all" or
"none". Every frame has its own generator seeded by (seed, family, index): frame 7 of
``BLURRED`` is the same pixels whether 1 or 300 frames are generated.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import qrcode

from gated.policy.codes import sign_code

WIDTH, HEIGHT = 1280, 720
QUIET = 4  # modules of quiet zone around the symbol, as printed
PATCH_PX = 8  # pixels per module of the symbol before it is warped into the frame
HMAC_KEY = b"bench-camera-qr-hmac-key-0123456789"
Image = np.ndarray


class Distortion(enum.StrEnum):
    ROTATED = "rotated"
    BLURRED = "blurred"  # defocus and motion blur
    PERSPECTIVE = "perspective"  # the code held tilted towards the camera
    LOW_CONTRAST = "low_contrast"  # grey print, dim booth, uneven light
    SMALL = "small"  # held far away: few pixels per module
    GBK = "gbk"  # GBK payloads (not UTF-8) under mild mixed distortion
    PHONE_GLARE = "phone_glare"  # a code on a phone screen: bezel, moire, a reflection
    MIXED = "mixed"  # all of the above at random moderate levels
    EMPTY = "empty"  # the scene without a code: what a camera sees most of the day


CODED = tuple(d for d in Distortion if d is not Distortion.EMPTY)


@dataclass(frozen=True)
class Frame:
    distortion: Distortion
    index: int
    severity: float  # 0 (mild) .. 1 (the hardest of its family)
    payload: bytes | None  # None for EMPTY frames
    image: Image = field(repr=False)  # BGR uint8, HEIGHT x WIDTH x 3

    @property
    def label(self) -> str:
        return f"{self.distortion}-{self.index:03d}"


# ------------------------------------------------------------------------------- payloads
_GBK_TEXTS = ("预约号:20261201-A017", "预约号 A0421 社保窗口 09:30-10:00",
              "王小明 预约 户籍业务 2026年12月01日 上午", "医保 B-0099 张丽 13:30",
              "不动产登记 预约号 R-20261201-0007 请于九点半前到号")
_SERVICES = ("social", "household", "medical", "property", "tax")


def payload_for(distortion: Distortion, index: int, rng: np.random.Generator) -> bytes:
    """GBK text for the GBK family; other families cycle reference / GBK / signed code."""
    kind = 1 if distortion is Distortion.GBK else index % 3
    if kind == 0:
        return f"APPT-20261201-{int(rng.integers(0, 10_000)):04d}".encode("ascii")
    if kind == 1:
        text = _GBK_TEXTS[int(rng.integers(0, len(_GBK_TEXTS)))]
        data = text.encode("gbk")
        assert _not_utf8(data), text
        return data
    minute = int(rng.integers(0, 16)) * 30
    fields = {"ref": f"R20261201-{int(rng.integers(0, 10_000)):04d}", "site": "demo-town",
              "day": "2026-12-01", "start": f"{8 + minute // 60:02d}:{minute % 60:02d}",
              "end": f"{8 + (minute + 30) // 60:02d}:{(minute + 30) % 60:02d}",
              "zone": "office", "svc": _SERVICES[int(rng.integers(0, len(_SERVICES)))],
              "pri": bool(rng.integers(0, 2))}
    return sign_code(fields, hmac_key=HMAC_KEY).encode("ascii")


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def symbol(payload: bytes) -> Image:
    """The QR symbol with its quiet zone, one pixel per module: 0 dark, 255 light."""
    qr = qrcode.QRCode(border=QUIET, box_size=1,
                       error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(payload)
    qr.make(fit=True)
    dark = np.array(qr.get_matrix(), dtype=bool)
    return np.where(dark, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------- the scene
def scene(rng: np.random.Generator) -> Image:
    """A booth as a grey image (float32): uneven light, counters, signs, text-like clutter."""
    base = rng.uniform(90, 170)
    coarse = rng.normal(0, 18, (9, 16)).astype(np.float32)
    img = base + cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(-1, 1, WIDTH, dtype=np.float32)[None, :] * rng.uniform(-25, 25)
    img = img + ramp
    for _ in range(int(rng.integers(3, 8))):  # furniture, doors, posters
        x0, y0 = int(rng.integers(0, WIDTH - 60)), int(rng.integers(0, HEIGHT - 60))
        w, h = int(rng.integers(60, 420)), int(rng.integers(40, 300))
        cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), float(rng.uniform(30, 230)), -1)
    for _ in range(int(rng.integers(4, 12))):  # lines of print on a sign
        x0, y0 = int(rng.integers(0, WIDTH - 200)), int(rng.integers(0, HEIGHT - 10))
        for k in range(int(rng.integers(5, 30))):
            x = x0 + k * int(rng.integers(9, 16))
            cv2.rectangle(img, (x, y0), (x + int(rng.integers(4, 12)), y0 + 8),
                          float(rng.uniform(10, 80)), -1)
    return img


def _quad(center: tuple[float, float], width: float, height: float, angle_deg: float,
          tilt_x_deg: float = 0.0, tilt_y_deg: float = 0.0) -> np.ndarray:
    """Corners (TL, TR, BR, BL) of a ``width`` x ``height`` rectangle seen by a pinhole
    camera: rotated in the image plane, then tilted about its own x and y axes."""
    w, h = width / 2, height / 2
    pts = np.array([[-w, -h, 0], [w, -h, 0], [w, h, 0], [-w, h, 0]], dtype=np.float64)
    a, tx, ty = (math.radians(v) for v in (angle_deg, tilt_x_deg, tilt_y_deg))
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(tx), -math.sin(tx)], [0, math.sin(tx), math.cos(tx)]])
    ry = np.array([[math.cos(ty), 0, math.sin(ty)], [0, 1, 0], [-math.sin(ty), 0, math.cos(ty)]])
    pts = pts @ (ry @ rx @ rz).T
    focal = 1000.0
    z = focal + pts[:, 2]
    return np.stack([center[0] + focal * pts[:, 0] / z, center[1] + focal * pts[:, 1] / z],
                    axis=1).astype(np.float32)


def place(img: Image, patch: Image, quad: np.ndarray, supersample: int = 3) -> np.ndarray:
    """Warp ``patch`` (grey float) onto ``img`` in place at ``quad``; returns the coverage mask
    (float, frame-sized). Warped at ``supersample`` x inside the bounding box and averaged
    down, so a code of 1.5 px per module is blurred by sampling as a sensor would, not aliased."""
    x0, y0 = np.floor(quad.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 2
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, WIDTH), min(y1, HEIGHT)
    w, h = x1 - x0, y1 - y0
    src_h, src_w = patch.shape[:2]
    src = np.array([[0, 0], [src_w, 0], [src_w, src_h], [0, src_h]], dtype=np.float32)
    dst = (quad - np.array([x0, y0], dtype=np.float32)) * supersample
    m = cv2.getPerspectiveTransform(src, dst)
    size = (w * supersample, h * supersample)
    warped = cv2.warpPerspective(patch.astype(np.float32), m, size, flags=cv2.INTER_LINEAR)
    cover = cv2.warpPerspective(np.ones((src_h, src_w), np.float32), m, size,
                                flags=cv2.INTER_LINEAR)
    warped = cv2.resize(warped, (w, h), interpolation=cv2.INTER_AREA)
    cover = cv2.resize(cover, (w, h), interpolation=cv2.INTER_AREA)
    region = img[y0:y1, x0:x1]
    region[:] = region * (1 - cover) + warped
    mask = np.zeros((HEIGHT, WIDTH), np.float32)
    mask[y0:y1, x0:x1] = cover
    return mask


def code_patch(payload: bytes, dark: float, light: float) -> Image:
    """The symbol at ``PATCH_PX`` pixels per module, dark and light levels applied."""
    sym = cv2.resize(symbol(payload), None, fx=PATCH_PX, fy=PATCH_PX,
                     interpolation=cv2.INTER_NEAREST)
    return (dark + (light - dark) * (sym.astype(np.float32) / 255)).astype(np.float32)


# ------------------------------------------------------------------------------- optics, sensor
def _defocus(img: Image, sigma: float) -> Image:
    return cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0.05 else img


def _motion(img: Image, length: float, angle_deg: float) -> Image:
    n = max(3, int(round(length)) | 1)
    kernel = np.zeros((n, n), np.float32)
    kernel[n // 2, :] = 1
    rot = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), angle_deg, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (n, n))
    return cv2.filter2D(img, -1, kernel / max(float(kernel.sum()), 1e-6))


def _glare(img: Image, center: tuple[float, float], radius: float, strength: float) -> Image:
    """A reflection: a bright soft ellipse added on top (the sensor clips it at 255)."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    d2 = ((xx - center[0]) / radius) ** 2 + ((yy - center[1]) / (radius * 0.6)) ** 2
    return img + strength * np.exp(-d2)


def _moire(img: Image, mask: np.ndarray, amp: float, period: float, angle_deg: float) -> Image:
    """The beat between a screen's pixel grid and the sensor's: stripes on the screen only."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    a = math.radians(angle_deg)
    wave = np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / period)
    return img * (1 + amp * wave * mask)


def _sensor(img: Image, rng: np.random.Generator, noise: float, gain: float = 1.0) -> Image:
    """Gain, shot noise, clipping, a colour cast, and the camera's MJPEG compression."""
    img = img * gain + rng.normal(0, noise, img.shape).astype(np.float32)
    grey = np.clip(img, 0, 255)
    tint = rng.uniform(0.92, 1.06, 3).astype(np.float32)
    bgr = np.clip(grey[..., None] * tint[None, None, :], 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 93))])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


# ------------------------------------------------------------------------------- the families
@dataclass
class _Look:
    """How one frame's code is shown; each family sets some fields from its severity."""

    module_px: float = 4.5
    angle: float = 0.0
    tilt_x: float = 0.0
    tilt_y: float = 0.0
    dark: float = 25.0
    light: float = 225.0
    defocus: float = 0.7
    motion: float = 0.0
    noise: float = 2.5
    light_ramp: float = 0.0  # grey levels of uneven light across the code
    phone: bool = False
    glare: float = 0.0
    moire: float = 0.0
    gain: float = 1.0


def _look(d: Distortion, s: float, rng: np.random.Generator, index: int) -> _Look:
    u = rng.uniform
    look = _Look(angle=u(0, 360))
    if d is Distortion.ROTATED:
        look.module_px = 4.0 - 1.6 * s
        look.tilt_x, look.tilt_y = u(-8, 8), u(-8, 8)
    elif d is Distortion.BLURRED:
        look.module_px = 5.0
        if index % 2:
            look.motion = 3 + 12 * s
        else:
            look.defocus = 0.8 + 2.0 * s
    elif d is Distortion.PERSPECTIVE:
        look.module_px = 5.0
        tilt = 15 + 60 * s
        share = u(0, 1)
        look.tilt_x = tilt * math.sqrt(share) * rng.choice([-1, 1])
        look.tilt_y = tilt * math.sqrt(1 - share) * rng.choice([-1, 1])
    elif d is Distortion.LOW_CONTRAST:
        look.module_px = 4.5
        mid, spread = u(70, 170), 90 * (1 - s) + 8
        look.dark, look.light = mid - spread / 2, mid + spread / 2
        look.light_ramp = u(10, 40)
        look.noise = 3.0
    elif d is Distortion.SMALL:
        look.module_px = 3.0 - 1.9 * s
    elif d is Distortion.GBK:
        look.module_px = u(3.5, 5.0)
        look.defocus = 0.7 + 1.3 * s
        look.tilt_x, look.tilt_y = u(-20, 20) * s, u(-20, 20) * s
    elif d is Distortion.PHONE_GLARE:
        look.phone = True
        look.module_px = u(3.5, 5.0)
        look.dark, look.light = 30, 240
        look.tilt_x, look.tilt_y = u(-25, 25), u(-25, 25)
        look.angle = u(-30, 30)
        look.glare = 60 + 220 * s
        look.moire = 0.04 + 0.14 * s
        look.gain = 1.0 + 0.3 * s
    elif d is Distortion.MIXED:
        look.module_px = u(2.5, 5.0)
        look.tilt_x, look.tilt_y = u(-35, 35), u(-35, 35)
        look.defocus = u(0.6, 1.6)
        look.motion = u(0, 9) if index % 3 == 0 else 0.0
        spread = u(50, 200)
        mid = u(100, 150)
        look.dark, look.light = mid - spread / 2, mid + spread / 2
        look.light_ramp = u(0, 30)
        look.phone = index % 4 == 1
        look.glare = u(0, 160) if look.phone else 0.0
        look.moire = u(0, 0.1) if look.phone else 0.0
        look.noise = u(2, 5)
    return look


def render(distortion: Distortion, index: int, count: int, seed: int = 14) -> Frame:
    """Frame ``index`` of ``count`` of one family (the severity ramps over ``count``)."""
    family = list(Distortion).index(distortion)
    rng = np.random.default_rng([seed, family, index])
    severity = index / max(1, count - 1)
    img = scene(rng)
    if distortion is Distortion.EMPTY:
        if index % 2:  # a phone with a blank screen, or a sheet of paper: no code in view
            quad = _quad((rng.uniform(0.3, 0.7) * WIDTH, rng.uniform(0.3, 0.7) * HEIGHT),
                         rng.uniform(120, 260), rng.uniform(160, 360), rng.uniform(-30, 30))
            place(img, np.full((64, 64), rng.uniform(200, 245), np.float32), quad)
        return Frame(distortion, index, severity, None, _sensor(img, rng, 2.5))
    payload = payload_for(distortion, index, rng)
    look = _look(distortion, severity, rng, index)
    patch = code_patch(payload, look.dark, look.light)
    if look.phone:
        screen = np.full((patch.shape[0] + 240, patch.shape[1] + 80), look.light, np.float32)
        screen[120:120 + patch.shape[0], 40:40 + patch.shape[1]] = patch
        phone = np.full((screen.shape[0] + 60, screen.shape[1] + 40), 18, np.float32)
        phone[30:30 + screen.shape[0], 20:20 + screen.shape[1]] = screen
        patch = phone
    scale = look.module_px / PATCH_PX
    center = (rng.uniform(0.25, 0.75) * WIDTH, rng.uniform(0.3, 0.7) * HEIGHT)
    quad = _quad(center, patch.shape[1] * scale, patch.shape[0] * scale, look.angle,
                 look.tilt_x, look.tilt_y)
    mask = place(img, patch, quad)
    side = float(patch.shape[1] * scale)
    if look.light_ramp:
        yy = np.linspace(-1, 1, HEIGHT, dtype=np.float32)[:, None]
        img = img + mask * yy * look.light_ramp
    if look.moire:
        img = _moire(img, mask, look.moire, rng.uniform(5, 11), rng.uniform(0, 180))
    if look.glare:
        cx, cy = quad.mean(axis=0)
        r = side * rng.uniform(0.15, 0.35)
        img = _glare(img, (cx + rng.uniform(-0.3, 0.3) * side, cy + rng.uniform(-0.3, 0.3) * side),
                     r, look.glare)
    img = _defocus(img, look.defocus)
    if look.motion:
        img = _motion(img, look.motion, rng.uniform(0, 180))
    return Frame(distortion, index, severity, payload, _sensor(img, rng, look.noise, look.gain))


def generate(per_family: int = 30, *, seed: int = 14, empty: int = 40,
             families: Iterable[Distortion] = CODED) -> list[Frame]:
    """``per_family`` frames of each coded family (severity 0..1), then ``empty`` frames
    without a code."""
    frames = [render(d, i, per_family, seed) for d in families for i in range(per_family)]
    return frames + [render(Distortion.EMPTY, i, empty, seed) for i in range(empty)]


def pick(distortion: Distortion, indices: Sequence[int], per_family: int = 30,
         seed: int = 14) -> list[Frame]:
    """A few frames of the benchmark's set, pixel for pixel (for tests)."""
    return [render(distortion, i, per_family, seed) for i in indices]
