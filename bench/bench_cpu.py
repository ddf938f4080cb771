"""The daemon's CPU, measured from outside: an idle booth, then visitors, thread by thread.

``gated run`` runs as its own process on the simulated booth (simulators in this process, a
mosquitto of its own, so the uplink is online as on a booth). CPU comes from
``/proc/<pid>/task/*/stat``, per kernel thread name (``dev-hall_gate``, ``gated-state``,
``gated-uplink``, ``gated-log``...), so each figure says where the time goes.

1. Idle: no visitor for ``--idle-s`` seconds (60). Target (issue 14): at most 0.3% of an x86
   core; under the Pi profile at most 2% of the emulated core (CPU seconds over the quota's
   share of wall time). Baseline in the same run: the floor for the same device traffic, a
   child process doing as many raw request/reply round trips per second over a pty pair
   (``os.write``/``select``/``os.read``, nothing else) as the simulators answered.
2. Per visitor: ``--visitors`` (20) in 40 s: a card tap, the gate opens, the visitor walks
   through the beam, the ticket prints. Net CPU per visitor = (CPU in the window - idle rate x
   window) / visitors, per thread. Target: at most 4 ms net on this box.

Run it twice to compare the booth as ``gated simulate`` ships it (visitor buttons wired to the
hall gate, whose inputs are then read every 100 ms even when idle) with ``--no-buttons`` (the
default config: buttons unwired, a quiet gate read once a second).

    .venv/bin/python bench/bench_cpu.py [--profile host|pi] [--no-buttons] [--no-gate-inputs]
        [--idle-s 60] [--visitors 20] [--py-spy FILE]

``--no-gate-inputs`` runs the booth with ``[outbox] gate_inputs = false``; ``--py-spy FILE``
also samples the daemon with py-spy during the visitors (raw stacks; where py-spy cannot tell
a waiting thread from a running one in this sandbox, its counts include waits).

Plain script; exits 0 whatever it measures.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import structlog  # noqa: E402
from common import (  # noqa: E402
    cpu_delta,
    devices_ready,
    figure,
    process_cpu,
    profile,
    thread_cpu,
    thread_wakeups,
    unwire_buttons,
)

from drivers.modbus.rtu import CoilValue, write_coil_request  # noqa: E402
from drivers.modbus_gate.settings import GateCoils  # noqa: E402
from gated.app.simulate import SimBooth, synthetic_card  # noqa: E402
from tests.support.booth import booth_with_broker  # noqa: E402
from tests.support.daemon import DaemonProcess  # noqa: E402

BENCH = "cpu"
OPEN = write_coil_request(1, GateCoils().open, CoilValue.ON)
VISIT_WINDOW_S = 40.0


def transactions(sim: SimBooth) -> int:
    """Requests the simulators have answered so far (relay boards, reader, printer status)."""
    return (len(sim.hall.request_log) + len(sim.office.request_log) + sim.reader.requests
            + sim.printer.status_requests)


def wire_floor(rate_per_s: float, seconds: float) -> float:
    """CPU share of a process doing ``rate_per_s`` bare request/reply round trips over a pty,
    against a responder in another process: what that much polling costs at the least."""
    code = f"""
import os, pty, select, signal, time, tty
m, s = pty.openpty(); tty.setraw(m); tty.setraw(s)
child = os.fork()
if child == 0:
    while True:
        os.read(m, 64); os.write(m, bytes(6))
period, end = 1 / {rate_per_s!r}, time.monotonic() + {seconds!r}
start = time.process_time()
while time.monotonic() < end:
    os.write(s, bytes(8)); got = 0
    while got < 6:
        select.select([s], [], [], 0.2); got += len(os.read(s, 64))
    time.sleep(period)
print(time.process_time() - start)
os.kill(child, signal.SIGKILL)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=seconds + 30)
    return float(out.stdout.split()[-1]) / seconds * 100


def visit(sim: SimBooth, rng: random.Random) -> None:
    start = time.perf_counter()
    sim.reader.present(synthetic_card(rng))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
            at > start and frame == OPEN for at, frame in list(sim.hall.request_log)):
        time.sleep(0.01)
    time.sleep(0.3)
    sim.reader.remove()
    time.sleep(0.3)  # the arm starts up (it takes 2 s each way on the simulated barrier)
    sim.hall.set_beam(True)  # the visitor walks through
    time.sleep(0.4)
    sim.hall.set_beam(False)


def top(per_thread: dict[str, float], scale: float, n: int = 8, digits: int = 2) -> str:
    busiest = sorted(per_thread.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{name} {v * scale:.{digits}f}" for name, v in busiest
                     if v * scale >= 0.5 * 10 ** -digits)


def run(profile_name: str, idle_s: float, visitors: int, buttons: bool,
        py_spy: Path | None = None, gate_inputs: bool = True) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    rng = random.Random(11)
    tag = (f" [{profile_name}{'' if buttons else ', no buttons'}"
           f"{'' if gate_inputs else ', gate_inputs off'}]")
    with tempfile.TemporaryDirectory() as tmp, \
            booth_with_broker(Path(tmp), denied_event=None) as (sim, _broker), \
            profile(profile_name) as pi:
        if not buttons:
            unwire_buttons(sim.config_path)
        if not gate_inputs:
            with open(sim.config_path, "a", encoding="utf-8") as f:
                f.write("\n[outbox]\ngate_inputs = false\n")
        sim.printer.out_dir = None
        with DaemonProcess(sim.config_path, Path(tmp),
                           extra_env=pi.env() if pi else {}) as d:
            assert d.proc is not None
            pid = d.proc.pid
            if pi:
                pi.add(pid)
            d.wait_for("READY=1", 60)
            devices_ready(sim.directory / "state")
            time.sleep(5)  # start-up work (first status, reprint check) is not idle
            t0, c0, n0 = time.monotonic(), thread_cpu(pid), transactions(sim)
            p0, w0 = process_cpu(pid), thread_wakeups(pid)
            time.sleep(idle_s)
            wall = time.monotonic() - t0
            idle = cpu_delta(c0, thread_cpu(pid))
            idle_wakes = cpu_delta(w0, thread_wakeups(pid))
            idle_total = process_cpu(pid) - p0
            rate = (transactions(sim) - n0) / wall
            spy = None if py_spy is None else subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid),
                 "--rate", "1000", "--format", "raw", "--threads",
                 "--output", str(py_spy)], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            t1, c1, p1 = time.monotonic(), thread_cpu(pid), process_cpu(pid)
            w1, n1 = thread_wakeups(pid), transactions(sim)
            for i in range(visitors):
                visit(sim, rng)
                left = t1 + (i + 1) * VISIT_WINDOW_S / visitors - time.monotonic()
                if left > 0:
                    time.sleep(left)
            window = time.monotonic() - t1
            busy = cpu_delta(c1, thread_cpu(pid))
            busy_total = process_cpu(pid) - p1
            busy_wakes = cpu_delta(w1, thread_wakeups(pid))
            busy_transactions = transactions(sim) - n1
            if spy is not None:
                spy.send_signal(2)  # py-spy writes its samples on SIGINT
                spy.wait(30)
            d.terminate()
    share = pi.cpu_share if pi else 1.0
    idle_pct = idle_total / wall * 100 / share
    floor = wire_floor(rate, min(idle_s, 30.0)) / share
    per_transaction_ms = floor / 100 * share / rate * 1000 if rate else 0.0
    unit = "% of the emulated core" if pi else "% of a core"
    print(pi.describe() if pi else "host profile: this machine as it is")
    figure(BENCH, f"idle daemon CPU{tag}", idle_pct, unit, baseline=floor,
           baseline_name=f"bare pty round trips at the same {rate:.1f}/s",
           target="<= 2%" if pi else "<= 0.3%")
    figure(BENCH, f"  idle, by thread (% of {'the emulated core' if pi else 'a core'}){tag}",
           top(idle, 100 / wall / share) or "-", "")
    figure(BENCH, f"  idle, wake-ups per second by thread{tag}",
           top(idle_wakes, 1 / wall, 10, 1) or "-", "",
           note=f"{sum(idle_wakes.values()) / wall:.1f}/s in all")
    net = {k: v - idle.get(k, 0.0) / wall * window for k, v in busy.items()}
    net_total = (busy_total - idle_total / wall * window) / visitors * 1000
    figure(BENCH, f"daemon CPU per visitor, net of idle{tag}", net_total, "ms",
           baseline=busy_total / visitors * 1000, baseline_name="including idle",
           target="<= 4 ms on x86", note=f"{visitors} visitors in {window:.0f} s")
    figure(BENCH, f"  per visitor, by thread (ms){tag}", top(net, 1000 / visitors) or "-", "")
    net_wakes = {k: v - idle_wakes.get(k, 0) / wall * window for k, v in busy_wakes.items()}
    figure(BENCH, f"  per visitor, wake-ups by thread (net of idle){tag}",
           top(net_wakes, 1 / visitors, 10, 0) or "-", "",
           note=f"{sum(net_wakes.values()) / visitors:.0f} in all")
    per_visit = (busy_transactions - rate * window) / visitors
    figure(BENCH, f"  device transactions per visitor, net of idle{tag}", per_visit, "",
           baseline=per_visit * per_transaction_ms, baseline_name="their bare pty round trips, ms",
           note="the floor the polling rates set: bare os calls in another process")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["host", "pi"], default="host")
    ap.add_argument("--idle-s", type=float, default=60.0)
    ap.add_argument("--visitors", type=int, default=20)
    ap.add_argument("--no-buttons", action="store_true")
    ap.add_argument("--no-gate-inputs", action="store_true",
                    help="[outbox] gate_inputs = false: no event per change of a gate's inputs")
    ap.add_argument("--py-spy", type=Path, metavar="FILE",
                    help="also sample the daemon with py-spy during the visitors (raw stacks)")
    a = ap.parse_args()
    run(a.profile, a.idle_s, a.visitors, not a.no_buttons, a.py_spy, not a.no_gate_inputs)


if __name__ == "__main__":
    main()
