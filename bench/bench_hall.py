"""The hall's screens under load: call_next to the number on a real display, card tap to relay
byte with and without the web process, and the web process's memory.

A real daemon (``gated run``) on simulated devices, a real ``gated hall``, one Debian Chromium
display page, and as many more live pages as asked (raw SSE readers on the display and counter
streams, each counter page signed in with its own session), while a counter calls through the
hall's HTTP API as a clerk's terminal does. Figures, next to baselines from the same run:

- call_next (the HTTP action sent) to the number on the Chromium display (a MutationObserver's
  timestamp): p50/p99; baseline: the same call to its ticket.called event on a bare control
  socket subscriber (what the daemon itself takes).
- card tap (the simulated SAM reader given a card) to the relay board's OPEN coil frame, with
  no web process (baseline) and with the web process serving the pages and the calls.
- the web process's RSS with all pages connected, with and without ``rich`` installed (the test
  venv has it, through import-linter; a booth install does not; structlog imports it).

    .venv/bin/python bench/bench_hall.py [--displays 20] [--counters 20] [--calls 100] [--taps 40]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import figure  # noqa: E402

from gated.app.simulate import SimBooth, synthetic_card  # noqa: E402
from gated.control import call, subscribe  # noqa: E402
from tests.support.daemon import DaemonProcess  # noqa: E402
from tests.support.hall import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    USERS,
    HallProcess,
    add_hall_section,
    free_port,
)

OPEN_FRAME_PREFIX = bytes([1, 5, 0, 0, 0xFF, 0])  # FC05 coil 0 (OPEN) on


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class SseReader(threading.Thread):
    """One live page that is not a browser: reads its stream until stopped."""

    def __init__(self, port: int, page: str, cookie: str = "") -> None:
        super().__init__(daemon=True)
        self.port, self.page, self.cookie = port, page, cookie
        self.messages = 0
        self.stop = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", f"/api/stream?page={self.page}",
                     headers={"cookie": self.cookie} if self.cookie else {})
        r = conn.getresponse()
        while not self.stop.is_set():
            line = r.fp.readline()
            if not line:
                return
            if line.startswith(b"event:"):
                self.messages += 1


def sign_in(port: int, user: str, pin: str, counter: str) -> tuple[str, str]:
    """(cookie, csrf) of a fresh session."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/api/signin", body=json.dumps({"user": user, "pin": pin,
                                                        "counter": counter}),
                 headers={"content-type": "application/json"})
    r = conn.getresponse()
    r.read()
    cookie = r.getheader("set-cookie", "").split(";")[0]
    conn.request("GET", "/counter", headers={"cookie": cookie})
    page = conn.getresponse().read().decode()
    csrf = page.split('data-csrf="', 1)[1].split('"', 1)[0]
    conn.close()
    return cookie, csrf


def act(port: int, cookie: str, csrf: str, action: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/api/action", body=json.dumps({"action": action, "args": {}}),
                 headers={"content-type": "application/json", "cookie": cookie,
                          "x-csrf-token": csrf})
    r = conn.getresponse()
    out: dict[str, Any] = json.loads(r.read())
    conn.close()
    return out


def taps(sim: SimBooth, n: int, rng: random.Random) -> list[float]:
    """Card given to the reader -> the OPEN coil frame on the hall gate's board (ms)."""
    out = []
    for _ in range(n):
        seen = len(sim.hall.request_log)
        t0 = time.perf_counter()
        sim.reader.present(synthetic_card(rng))
        deadline = time.monotonic() + 5
        hit = None
        while hit is None and time.monotonic() < deadline:
            for at, frame in list(sim.hall.request_log)[seen:]:
                if frame.startswith(OPEN_FRAME_PREFIX) and at >= t0:
                    hit = at
                    break
            time.sleep(0.002)
        sim.reader.remove()
        if hit is not None:
            out.append((hit - t0) * 1000)
        time.sleep(rng.uniform(0.4, 0.7))  # no phase lock with the reader's polls
    return out


def daemon_call_baseline(state: Path, n: int) -> list[float]:
    """call_next -> its ticket.called event on a bare control socket subscriber (ms)."""
    out = []
    with subscribe(state, status_interval_s=30) as sub:
        it = iter(sub)
        next(it)
        for _ in range(n):
            call(state, "manual_ticket", {})
            t0 = time.time()
            number = call(state, "call_next", {"counter": "4"})["ticket"]["number"]
            for msg in it:
                ev = msg.get("event") or {}
                if ev.get("type") == "ticket.called" and ev["data"]["number"] == number:
                    out.append((time.time() - t0) * 1000)
                    break
    return out


BENCH = "hall"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--displays", type=int, default=20)
    ap.add_argument("--counters", type=int, default=20)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--taps", type=int, default=40)
    a = ap.parse_args()
    logging.disable(logging.INFO)
    rng = random.Random(3)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, SimBooth(Path(tmp) / "sim", mqtt="off") as sim:
        port = free_port()
        text = sim.config_path.read_text(encoding="utf-8")  # the reader polls every 20 ms, so
        sim.config_path.write_text(text.replace(  # the tap figure is not the 250 ms poll's
            'type = "sam_idcard"\n', 'type = "sam_idcard"\npoll_interval_ms = 20\n'),
            encoding="utf-8")
        add_hall_section(sim.config_path, port, extra=(
            '\n[queue]\ncounters = { "3" = ["general"], "4" = ["general"] }\n'
            "\n[hall.voice]\non_display = false\n"))
        state = sim.directory / "state"
        with DaemonProcess(sim.config_path, Path(tmp)) as d:
            d.wait_for("READY=1", 30)
            time.sleep(2)
            base_taps = taps(sim, a.taps, rng)
            base_calls = daemon_call_baseline(state, a.calls)
            rows = []
            for label, hide_rich in (("booth install (no rich)", True), ("test venv", False)):
                env_dir = Path(tmp) / ("norich" if hide_rich else "rich")
                env_dir.mkdir()
                if hide_rich:
                    (env_dir / "rich.py").write_text("raise ImportError('not on a booth')\n")
                hall = HallProcess(sim.config_path, Path(tmp), port)
                import os
                old = os.environ.get("PYTHONPATH")
                os.environ["PYTHONPATH"] = str(env_dir)
                try:
                    hall.start()
                finally:
                    if old is None:
                        os.environ.pop("PYTHONPATH")
                    else:
                        os.environ["PYTHONPATH"] = old
                rss_idle = hall.rss_kib()
                readers = [SseReader(port, "display") for _ in range(a.displays - 1)]
                sessions = [sign_in(port, "c08", USERS["c08"][1], "3")
                            for _ in range(a.counters)]
                readers += [SseReader(port, "counter", c) for c, _ in sessions]
                for r in readers:
                    r.start()
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    page = browser.new_page(viewport={"width": 1920, "height": 1080})
                    page.goto(hall.url + "/display")
                    page.wait_for_function("() => window.hallState.views > 0", timeout=20000)
                    page.evaluate("""() => { window.hallShown = [];
                        new MutationObserver(() => { const n = document.getElementById('latest');
                          if (n) window.hallShown.push([Date.now(), n.textContent]); })
                        .observe(document.getElementById('app'), {childList: true,
                                                                  subtree: true}); }""")
                    cookie, csrf = sessions[0]
                    lat = []
                    for _ in range(a.calls):
                        call(state, "manual_ticket", {})
                        t0 = time.time() * 1000
                        number = act(port, cookie, csrf, "call_next")["ticket"]["number"]
                        page.wait_for_function(
                            "(n) => window.hallShown.some(([, t]) => t.includes(n))",
                            arg=number, timeout=10000)
                        shown = page.evaluate(
                            "(n) => window.hallShown.find(([, t]) => t.includes(n))[0]", number)
                        lat.append(shown - t0)
                        time.sleep(0.05)
                    rss_loaded = hall.rss_kib()
                    load_stop = threading.Event()

                    def clerk(stop: threading.Event = load_stop, cookie: str = cookie,
                              csrf: str = csrf) -> None:
                        while not stop.wait(0.3):  # the calls keep coming during the taps
                            call(state, "manual_ticket", {})
                            act(port, cookie, csrf, "call_next")
                    t = threading.Thread(target=clerk, daemon=True)
                    t.start()
                    loaded_taps = taps(sim, a.taps, rng)
                    load_stop.set()
                    t.join(5)
                    rss_end = hall.rss_kib()
                    browser.close()
                for r in readers:
                    r.stop.set()
                delivered = sum(r.messages for r in readers)
                hall.terminate()
                rows.append((label, lat, loaded_taps, rss_idle, rss_loaded, rss_end, delivered,
                             len(readers) + 1))
    print(f"call_next -> ticket.called on a bare control-socket subscriber (baseline, n="
          f"{len(base_calls)}): p50 {statistics.median(base_calls):.1f} ms  p99 "
          f"{pct(base_calls, 99):.1f} ms")
    print(f"card tap -> OPEN relay frame, no web process (baseline, n={len(base_taps)}): p50 "
          f"{statistics.median(base_taps):.1f} ms  p99 {pct(base_taps, 99):.1f} ms")
    for label, lat, lt, idle, loaded, end, delivered, pages in rows:
        print(f"== gated hall, {label}: {pages} live pages ({a.displays} displays, "
              f"{a.counters} counters), {delivered} messages delivered to the SSE readers")
        print(f"call_next (HTTP) -> number on the Chromium display (n={len(lat)}): p50 "
              f"{statistics.median(lat):.1f} ms  p99 {pct(lat, 99):.1f} ms   target p99 <= 300")
        print(f"card tap -> OPEN relay frame with that load (n={len(lt)}): p50 "
              f"{statistics.median(lt):.1f} ms  p99 {pct(lt, 99):.1f} ms")
        print(f"web process RSS: idle {idle / 1024:.1f} MiB, with the pages {loaded / 1024:.1f}"
              f" MiB, after the taps {end / 1024:.1f} MiB   target <= 40 MB")
        figure(BENCH, f"call_next -> number on the display, p99 [{label}]", pct(lat, 99), "ms",
               baseline=pct(base_calls, 99), baseline_name="bare control-socket subscriber",
               target="<= 300 ms", note=f"{pages} live pages")
        figure(BENCH, f"card tap -> OPEN relay with the pages, p99 [{label}]", pct(lt, 99),
               "ms", baseline=pct(base_taps, 99), baseline_name="no web process")
        figure(BENCH, f"web process RSS with the pages [{label}]", loaded / 1024, "MiB",
               target="<= 40 MB", note=f"idle {idle / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
