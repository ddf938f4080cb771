"""Soak: ``gated run`` serving a long stream of visitors; does anything grow?

The daemon runs as its own process (as systemd runs it) on the simulated booth's devices, whose
simulators run in this process, with a mosquitto that takes every event (the outbox stays
near empty). Visitors tap synthetic ID cards; two clerks call and serve tickets through the
control socket, so the queue stays short. Every ``--every`` visitors it prints the daemon's
resident memory, open file descriptors, threads and outbox depth, and at the end the growth
per visitor after warm-up (the first minute) next to the first minute's own figures.

    .venv/bin/python bench/bench_soak.py [--visitors 20000] [--rate 4] [--every 1000]
        [--env MALLOC_ARENA_MAX=2]

Plain script; exits 0 whatever it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import figure, profile  # noqa: E402

from gated.app.simulate import synthetic_card  # noqa: E402
from gated.control import ControlError, call  # noqa: E402
from tests.support.booth import booth_with_broker  # noqa: E402
from tests.support.daemon import DaemonProcess  # noqa: E402

WARM_UP_S = 60.0


def proc_figures(pid: int) -> tuple[float, int, int]:
    """(RSS in MiB, open fds, threads) of a process."""
    rss, threads = 0.0, 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd")), threads


def depth(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


BENCH = "soak"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--visitors", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=4.0, help="visitors per second")
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the daemon")
    ap.add_argument("--profile", choices=["host", "pi"], default="host")
    args = ap.parse_args()
    env = dict(e.split("=", 1) for e in args.env)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # sims quiet
    rng = random.Random(7)
    with profile(args.profile) as pi, tempfile.TemporaryDirectory() as tmp, \
            booth_with_broker(Path(tmp), "replay_rate = 5000.0\n",
                              denied_event=None) as (sim, _broker):
        text = sim.config_path.read_text(encoding="utf-8")
        text = text.replace('type = "sam_idcard"\n', 'type = "sam_idcard"\npoll_interval_ms = 50\n')
        text = text.replace('type = "escpos_printer"\n',
                            'type = "escpos_printer"\nprint_settle_ms = 100\n')
        sim.config_path.write_text(text, encoding="utf-8")
        state = sim.directory / "state"
        sim.printer.out_dir = None  # no PNG per ticket: the bench measures the daemon
        with DaemonProcess(sim.config_path, Path(tmp),
                           extra_env={**env, **(pi.env() if pi else {})}) as d:
            assert d.proc is not None
            pid = d.proc.pid
            if pi:
                pi.add(pid)
            d.wait_for("READY=1", 30)
            time.sleep(2.0)
            t0 = time.monotonic()
            rows = [(0, 0.0, *proc_figures(pid), depth(state / "gated.db"))]
            print(f"daemon pid {pid}, env {env or 'default'}; {args.visitors} visitors at "
                  f"{args.rate:g}/s")
            print(f"{'visitors':>9} {'minutes':>8} {'RSS MiB':>8} {'fds':>4} {'threads':>7} "
                  f"{'outbox':>7}")
            warm: tuple[int, float] | None = None
            period = 1.0 / args.rate
            for n in range(1, args.visitors + 1):
                started = time.monotonic()
                sim.reader.present(synthetic_card(rng))
                time.sleep(min(0.12, period / 2))
                sim.reader.remove()
                if n % 2 == 0:
                    counter = rng.choice(["1", "2"])
                    with contextlib.suppress(ControlError):
                        call(state, "call_next", {"counter": counter}, timeout=10)
                if warm is None and time.monotonic() - t0 >= WARM_UP_S:
                    warm = (n, proc_figures(pid)[0])
                if n % args.every == 0 or n == args.visitors:
                    row = (n, (time.monotonic() - t0) / 60, *proc_figures(pid),
                           depth(state / "gated.db"))
                    rows.append(row)
                    print(f"{row[0]:>9} {row[1]:>8.1f} {row[2]:>8.1f} {row[3]:>4} {row[4]:>7} "
                          f"{row[5]:>7}", flush=True)
                time.sleep(max(0.0, period - (time.monotonic() - started)))
            with contextlib.suppress(ControlError):
                up = call(state, "get_status")["status"].get("uplink", {})
                print(f"uplink: connects {up.get('connects')}, published {up.get('published')}, "
                      f"acked {up.get('acked')}, replays {up.get('replays')}")
            assert d.terminate() == 0
            log = d.log_path.read_text(errors="replace")
            for event in ("mqtt_disconnected", "state_item_failed", "device_offline",
                          "device_timeout_tolerated"):
                if log.count(event):
                    print(f"daemon log: {log.count(event)} x {event}")
        last = rows[-1]
        if warm is not None and last[0] > warm[0]:
            per = (last[2] - warm[1]) * 1024 / (last[0] - warm[0])
            print(f"after warm-up ({warm[0]} visitors, first {WARM_UP_S:.0f} s: RSS "
                  f"{warm[1]:.1f} MiB): {per:+.2f} KiB per visitor over {last[0] - warm[0]} "
                  f"visitors; fds {rows[0][3]} -> {last[3]}, threads {rows[0][4]} -> "
                  f"{last[4]}; tickets printed {len(sim.printer.tickets)}")
            figure(BENCH, f"RSS growth after warm-up, {args.rate:g} visitors/s", per,
                   "KiB/visitor", note=f"{last[0] - warm[0]} visitors; RSS {warm[1]:.1f} MiB "
                   f"after warm-up, {last[2]:.1f} MiB at the end")
            figure(BENCH, "fds / threads, start -> end",
                   f"{rows[0][3]}->{last[3]} / {rows[0][4]}->{last[4]}", "")


if __name__ == "__main__":
    main()
