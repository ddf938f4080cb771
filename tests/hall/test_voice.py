"""Mandarin announcements on the real engine: espeak-ng's cmn voice renders each phrase once to
a WAV that sox finds non-silent and of a plausible length; numbers are read digit by digit."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gated.config import VoiceConfig
from gated.hall.voice import Voice, phrase, spoken_counter, spoken_number

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                                  reason="espeak-ng and sox (scripts/test-all.sh installs them)")


def run(coro: Any) -> Any:
    """``asyncio.run`` on a thread of its own: Playwright's sync API keeps a loop running on
    this one while the browser tests' fixture is alive."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(60)


def sox_stat(path: Path) -> dict[str, float]:
    out = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True,
                         check=True).stderr
    stats = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        try:
            stats[key.strip()] = float(value)
        except ValueError:
            continue
    return stats


def test_numbers_digit_by_digit_and_counters_by_name() -> None:
    assert phrase(VoiceConfig(), "A023", "3号窗口") == "请 A 零二三 号 到 三号窗口 办理"
    assert spoken_number("1B0102") == "一 B 零一零二"
    assert spoken_number("A100") == "A 一零零"
    assert [spoken_counter(n) for n in ("10号窗口", "12号窗口", "21号", "综合窗口")] == [
        "十号窗口", "十二号窗口", "二十一号", "综合窗口"]


@needs_espeak
def test_rendered_once_non_silent_and_plausibly_long(tmp_path: Path) -> None:
    voice = Voice(VoiceConfig(), tmp_path / "voice")
    key = voice.key(phrase(VoiceConfig(), "A023", "3号窗口"))

    async def twice() -> tuple[Path | None, Path | None]:
        return await asyncio.gather(voice.render(key), voice.render(key))
    first, second = run(twice())
    assert first is not None and first == second and voice.rendered == 1
    stats = sox_stat(first)
    assert 2.0 < stats["Length (seconds)"] < 12.0
    assert stats["RMS     amplitude"] > 0.02  # speech, not silence
    assert run(voice.render("0" * 32)) is None  # a key nobody made
    assert run(voice.render("../../etc/passwd")) is None


def test_a_broken_engine_is_logged_and_renders_nothing(tmp_path: Path) -> None:
    cfg = VoiceConfig(engine=["false", "{text}", "{out}"])
    voice = Voice(cfg, tmp_path)
    assert run(voice.render(voice.key("请 A 零零一 号"))) is None
    missing = Voice(VoiceConfig(engine=["/nonexistent/tts", "{out}"]), tmp_path)
    assert run(missing.render(missing.key("x"))) is None


def test_the_box_plays_each_call_whole_in_order_and_repeated(tmp_path: Path) -> None:
    played = tmp_path / "played.txt"
    engine = ["sh", "-c", 'printf "RIFF%060d" 0 > "$1"; sleep 0.05', "{text}", "{out}"]
    player = ["sh", "-c", f'echo "start $0" >> {played}; sleep 0.1; echo "end $0" >> {played}',
              "{file}"]
    voice = Voice(VoiceConfig(engine=engine, player=player, on_box=True, repeat=2), tmp_path)
    keys = [voice.key(phrase(VoiceConfig(), n, "3号窗口")) for n in ("A001", "A002", "A003")]

    async def announce() -> None:
        task = voice.start_box()
        assert task is not None
        for key in keys:
            voice.announce_on_box(key)
        for _ in range(200):
            if played.exists() and len(played.read_text().splitlines()) == 12:
                break
            await asyncio.sleep(0.05)
        task.cancel()
    run(announce())
    lines = played.read_text().splitlines()
    expected = []
    for key in keys:
        for _ in range(2):
            expected += [f"start {voice.path(key)}", f"end {voice.path(key)}"]
    assert lines == expected  # one whole play after the other, never overlapping
