"""`gated run` with simulated devices: start-to-ready time and resident memory.

Targets (issue 2): ready within 1.5 s, 60 MB RSS or less. Both are printed next to baselines
measured in the same run on the same machine: a bare `python -c pass` start, and the RSS of a
Python process that imported the same third-party libraries (pydantic, structlog, pyserial,
paho-mqtt, orjson). Memory is sampled after READY, then after a minute's worth of visitors (manual
tickets through the control socket and card taps on the simulated reader), to show it stays flat.

    .venv/bin/python bench/bench_daemon.py [--runs 5] [--visitors 200]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import figure, profile  # noqa: E402
from pi_profile import PiProfile  # noqa: E402

from gated.app.simulate import SimBooth, synthetic_card  # noqa: E402
from gated.control import call  # noqa: E402
from tests.support.daemon import DaemonProcess  # noqa: E402

BENCH = "daemon"


def bare_start(runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        out.append(time.monotonic() - t)
    return out


def libs_rss() -> int:
    code = ("import pydantic, structlog, serial, sqlite3, paho.mqtt.client, orjson\n"
            "print(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])")
    return int(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                              text=True).stdout)


def measure(runs: int, visitors: int, pi: PiProfile | None
            ) -> tuple[list[float], list[int], int]:
    import random

    rng = random.Random(1)
    ready: list[float] = []
    rss_ready: list[int] = []
    rss_after = 0
    with tempfile.TemporaryDirectory() as tmp, SimBooth(Path(tmp) / "sim", mqtt="off") as sim:
        from gated.config import load_config

        state_dir = load_config(sim.config_path).state_dir
        for i in range(runs):
            with DaemonProcess(sim.config_path, Path(tmp),
                               extra_env=pi.env() if pi else {}) as dp:
                if pi and dp.proc is not None:
                    pi.add(dp.proc.pid)  # moved in once started: its first ms run fast
                ready.append(dp.wait_for("READY=1", 30))
                time.sleep(0.5)
                rss_ready.append(dp.rss_kib())
                if i == runs - 1:
                    for n in range(visitors):
                        if n % 4 == 0:
                            sim.reader.present(synthetic_card(rng))
                            time.sleep(0.4)
                            sim.reader.remove()
                        else:
                            call(state_dir, "manual_ticket", {})
                        if n % 20 == 0:
                            call(state_dir, "call_next", {"counter": "1"})
                    time.sleep(1.0)
                    rss_after = dp.rss_kib()
                dp.terminate()
    return ready, rss_ready, rss_after


def main() -> None:
    import logging

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--visitors", type=int, default=200)
    ap.add_argument("--profile", choices=["host", "pi"], default="host")
    a = ap.parse_args()
    logging.disable(logging.INFO)  # the simulators' own log lines would drown the figures
    with profile(a.profile) as pi:
        ready, rss_ready, rss_after = measure(a.runs, a.visitors, pi)
    base = bare_start(a.runs)
    base_rss = libs_rss() * 1024 / 1e6
    print("this environment: every extra installed (the test venv); "
          + (pi.describe() if pi else "host profile"))
    figure(BENCH, "start to READY=1, median", statistics.median(ready), "s",
           baseline=statistics.median(base), baseline_name="python -c pass",
           target="<= 1.5 s", note=f"max {max(ready):.3f} s of {a.runs}")
    figure(BENCH, "RSS after READY, median", statistics.median(rss_ready) * 1024 / 1e6, "MB",
           baseline=base_rss, baseline_name="python + the same libraries", target="<= 60 MB")
    figure(BENCH, f"RSS after {a.visitors} visitors", rss_after * 1024 / 1e6, "MB",
           baseline=base_rss, baseline_name="python + the same libraries", target="<= 60 MB")


if __name__ == "__main__":
    main()
