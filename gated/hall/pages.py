"""The pages' HTML shells and the static assets, all served by gated itself (the hall has no
internet: no CDN, no web font). A shell carries no inline script or style (the CSP forbids
both); what a page needs to start (its kind, counter, CSRF token) is in ``data-`` attributes,
and everything it shows comes from the live stream and is written with ``textContent``.
"""

from __future__ import annotations

import html
import importlib.resources
import io
import math
import struct
import wave
from dataclasses import dataclass

STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".wav": "audio/wav", ".svg": "image/svg+xml"}
PAGE_SCRIPTS = {"display": "display.js", "counter": "counter.js", "pad": "rate.js",
                "guard": "guard.js", "qr": "qr.js", "index": "index.js"}
PAGE_TITLES = {"display": "叫号显示", "counter": "窗口呼叫终端", "pad": "服务评价",
               "guard": "门岗控制台", "qr": "服务评价", "index": "大厅屏幕"}


@dataclass(frozen=True)
class Asset:
    content_type: str
    body: bytes


def load_static() -> dict[str, Asset]:
    """Every file of ``gated/hall/static`` by name, plus the alarm chime (made here: a sound
    file in the repository would only be a binary nobody can review)."""
    out: dict[str, Asset] = {}
    root = importlib.resources.files("gated.hall") / "static"
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in STATIC_TYPES:
            out[entry.name] = Asset(STATIC_TYPES[suffix], entry.read_bytes())
    out["chime.wav"] = Asset("audio/wav", chime())
    return out


def chime(rate: int = 16000) -> bytes:
    """Two falling tones (880 Hz, 660 Hz), 0.25 s each, as a 16-bit mono WAV."""
    frames = bytearray()
    for freq in (880.0, 660.0):
        n = int(rate * 0.25)
        for i in range(n):
            envelope = min(1.0, i / 200, (n - i) / 800)
            frames += struct.pack("<h", int(12000 * envelope * math.sin(2 * math.pi * freq * i
                                                                        / rate)))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return buf.getvalue()


def shell(page: str, *, title: str, csrf: str = "", counter: str = "", user: str = "",
          role: str = "", signin: str = "") -> str:
    """The HTML of a page; ``signin`` names the role the page needs when nobody with it is
    signed in (the page then shows the sign-in form)."""
    attrs = {"page": page, "csrf": csrf, "counter": counter, "user": user, "role": role,
             "signin": signin, "title": title}
    data = " ".join(f'data-{k}="{html.escape(v, quote=True)}"' for k, v in attrs.items())
    name = html.escape(f"{PAGE_TITLES.get(page, '')} · {title}")
    return (f'<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<title>{name}</title><link rel="stylesheet" href="/static/hall.css"></head>'
            f'<body class="page-{page}" {data}><div id="app"></div>'
            f'<script src="/static/common.js"></script>'
            f'<script src="/static/{PAGE_SCRIPTS[page]}"></script></body></html>\n')
