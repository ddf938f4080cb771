"""Mandarin announcements: the phrase of a call, rendered once per phrase to a WAV on the booth
and cached on disk, served to the display page and, optionally, played on the box itself.

``phrase`` speaks a ticket number digit by digit ("A023" -> "A 零二三") and a counter by its
name ("3号窗口" -> "三号窗口"), in ``[hall.voice] template``. The engine is a command template
(default espeak-ng's Mandarin voice, Debian's ``espeak-ng``; a site may point it at a local
Piper model file): ``{text}`` and ``{out}`` are replaced, the command must write a WAV to
``{out}``. Nothing is ever downloaded. Rendering runs as a subprocess with a timeout, one at a
time, off the event loop's thread; the box's own playback (``on_box``) is a queue of its own,
so a new call never cuts off the one being spoken.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
from collections import OrderedDict
from pathlib import Path

import structlog

from gated.config import VoiceConfig

log = structlog.get_logger(__name__)

DIGITS = "零一二三四五六七八九"
KEY = re.compile(r"^[0-9a-f]{32}$")
MAX_KEYS = 2000


def spoken_number(number: str) -> str:
    """``A023`` -> ``A 零二三``, ``1B0102`` -> ``一 B 零一零二``: letters apart, digits one by
    one, as a hall's announcer reads a ticket."""
    groups: list[str] = []
    for ch in number:
        if ch.isdigit():
            if groups and groups[-1][-1] in DIGITS:
                groups[-1] += DIGITS[int(ch)]
            else:
                groups.append(DIGITS[int(ch)])
        elif ch.isalnum():
            groups.append(ch.upper())
    return " ".join(groups)


def spoken_counter(name: str) -> str:
    """Digits in a counter's name as a Chinese number: "3号窗口" -> "三号窗口", "12号" ->
    "十二号" (counters are counted, tickets are read out)."""
    def cardinal(m: re.Match[str]) -> str:
        n = int(m.group(0))
        if n < 10:
            return DIGITS[n]
        if n < 100:
            tens, ones = divmod(n, 10)
            return ("" if tens == 1 else DIGITS[tens]) + "十" + (DIGITS[ones] if ones else "")
        return "".join(DIGITS[int(c)] for c in m.group(0))
    return re.sub(r"\d+", cardinal, name)


def phrase(cfg: VoiceConfig, number: str, counter_name: str) -> str:
    return cfg.template.format(number=spoken_number(number), counter=spoken_counter(counter_name))


class Voice:
    """Rendered phrases by key (a hash of engine and text), on disk under ``cache_dir``."""

    def __init__(self, cfg: VoiceConfig, cache_dir: Path) -> None:
        self.cfg = cfg
        self.cache_dir = cache_dir
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._lock = asyncio.Lock()
        self._box: asyncio.Queue[str] | None = None
        self.rendered = 0

    def key(self, text: str) -> str:
        """The key of ``text`` (remembered, so the display may fetch its audio by key)."""
        key = hashlib.sha256(json.dumps([self.cfg.engine, text]).encode()).hexdigest()[:32]
        self._texts[key] = text
        self._texts.move_to_end(key)
        while len(self._texts) > MAX_KEYS:
            self._texts.popitem(last=False)
        return key

    def path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.wav"

    async def render(self, key: str) -> Path | None:
        """The WAV of a known key, rendered if it is not cached; None for an unknown key or a
        failed render (logged ``hall_voice_failed``)."""
        if not KEY.match(key):
            return None
        path = self.path(key)
        if path.exists():
            return path
        text = self._texts.get(key)
        if text is None:
            return None
        async with self._lock:
            if path.exists():
                return path
            return await self._render(text, path)

    async def _render(self, text: str, path: Path) -> Path | None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        cmd = [a.replace("{text}", text).replace("{out}", str(tmp)) for a in self.cfg.engine]
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE)
        except OSError as e:
            log.error("hall_voice_failed", engine=self.cfg.engine[0], error=str(e))
            return None
        try:
            _, err = await asyncio.wait_for(proc.communicate(), self.cfg.render_timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.error("hall_voice_failed", engine=self.cfg.engine[0], error="timeout")
            return None
        if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size < 64:
            log.error("hall_voice_failed", engine=self.cfg.engine[0], code=proc.returncode,
                      error=err.decode(errors="replace")[-200:])
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            return None
        tmp.replace(path)
        self.rendered += 1
        return path

    # ------------------------------------------------------------------ the box's speaker
    def start_box(self) -> asyncio.Task[None] | None:
        if not self.cfg.on_box:
            return None
        self._box = asyncio.Queue(maxsize=50)
        return asyncio.get_running_loop().create_task(self._play_box())

    def announce_on_box(self, key: str) -> None:
        if self._box is None:
            return
        try:
            self._box.put_nowait(key)
        except asyncio.QueueFull:
            log.warning("hall_voice_box_behind", queued=self._box.qsize())

    async def _play_box(self) -> None:
        assert self._box is not None
        while True:
            key = await self._box.get()
            path = await self.render(key)
            if path is None:
                continue
            for _ in range(self.cfg.repeat):  # each whole, one after the other
                cmd = [a.replace("{file}", str(path)) for a in self.cfg.player]
                try:
                    proc = await asyncio.create_subprocess_exec(
                        *cmd, stdin=asyncio.subprocess.DEVNULL,
                        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                    await asyncio.wait_for(proc.wait(), 30)
                except (OSError, TimeoutError) as e:
                    log.error("hall_voice_box_failed", player=self.cfg.player[0], error=str(e))
                    break
