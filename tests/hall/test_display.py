"""The calling display in a real browser: a call shows at once, a burst is shown and announced in
order (each announcement whole, its audio real speech), and the page survives the web process
being killed and restarted."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.hall.conftest import Booth, wait_js

pytestmark = pytest.mark.timeout(180)

LATEST = "() => (document.getElementById('latest') || {}).textContent || ''"


def open_display(booth: Booth, width: int = 1920, height: int = 1080) -> Any:
    page = booth.page("/display", width, height)
    wait_js(page, "() => window.hallState.views > 0 && window.hallState.daemonOk")
    return page


def issue(booth: Booth, n: int, service: str = "general") -> None:
    for _ in range(n):
        assert booth.cmd("manual_ticket", service=service)["ok"]


def test_a_call_shows_on_the_display_within_a_second(booth: Booth) -> None:
    page = open_display(booth)
    issue(booth, 1)
    reply = booth.cmd("call_next", counter="3")  # as over MQTT or `gated ctl`
    number = reply["ticket"]["number"]
    shown = wait_js(page, "(n) => window.hallCalls.some((c) => c.number === n)", 1000,
                    arg=number)
    assert shown
    text = page.evaluate(LATEST)
    assert number in text and "3号窗口" in text
    booth.shot(page, "display-1920x1080")
    for w, h, name in ((1280, 720, "display-1280x720"), (1080, 1920, "display-portrait")):
        other = open_display(booth, w, h)
        wait_js(other, LATEST.replace("() =>", "(n) =>") + ".includes(n)", arg=number)
        booth.shot(other, name)
        other.context.close()
    page.context.close()


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


def test_a_burst_of_five_calls_is_shown_and_announced_in_order_each_whole(
        booth: Booth, tmp_path: Path) -> None:
    page = open_display(booth)
    issue(booth, 5, "social")
    numbers = [booth.cmd("call_next", counter=c, services=["social"])["ticket"]["number"]
               for c in ("3", "4", "3", "4", "3")]
    assert booth.cmd("recall", counter="3")["ok"]  # a recall is spoken again
    expected = [*numbers, numbers[-1]]
    shown = wait_js(page, "(n) => window.hallCalls.length >= n && window.hallCalls", 5000,
                    arg=len(expected))
    assert [c["number"] for c in shown][-len(expected):] == expected
    announced = wait_js(page, """(n) => {
        const a = window.hallAnnounced.slice(-n);
        return a.length === n && a.every((x) => x.ended !== null || x.error) && a; }""",
                        90_000, arg=len(expected))
    assert [a["number"] for a in announced] == expected
    assert all(a["error"] is None for a in announced), announced
    for before, after in zip(announced, announced[1:], strict=False):
        assert after["started"] >= before["ended"]  # never cut off: one after the other
    text = page.evaluate(LATEST)
    assert numbers[-1] in text
    booth.shot(page, "display-burst")
    page.context.close()
    for a in {a["url"] for a in announced}:  # what the browser played: real speech
        wav = tmp_path / (a.rsplit("/", 1)[-1])
        with urllib.request.urlopen(booth.hall.url + a, timeout=10) as r:
            wav.write_bytes(r.read())
        stats = sox_stat(wav)
        assert 1.0 < stats["Length (seconds)"] < 10.0, stats
        assert stats["RMS     amplitude"] > 0.02, stats


def test_the_display_recovers_after_the_web_process_is_killed(booth: Booth) -> None:
    page = open_display(booth)
    booth.hall.kill()
    wait_js(page, "() => !window.hallState.connected && "
                  "!document.getElementById('conn').hidden")
    assert "连接中断" in page.evaluate("() => document.getElementById('conn').textContent")
    booth.shot(page, "display-connection-lost")
    issue(booth, 1)
    # the daemon serves on without its web process
    number = booth.cmd("call_next", counter="4", services=["general"])["ticket"]["number"]
    booth.hall.start()
    wait_js(page, "() => window.hallState.connected && window.hallState.daemonOk", 30_000)
    # after reconnecting it rebuilds from the daemon's status: the call made meanwhile is there
    wait_js(page, LATEST.replace("() =>", "(n) =>") + ".includes(n)", 10_000, arg=number)
    issue(booth, 1)
    later = booth.cmd("call_next", counter="4", services=["general"])["ticket"]["number"]
    wait_js(page, "(n) => window.hallCalls.some((c) => c.number === n)", 5000, arg=later)
    page.context.close()
