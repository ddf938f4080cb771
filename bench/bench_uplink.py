"""Drain rate of a 100,000-event backlog to a local mosquitto at QoS 1, and memory during it.

Baseline, measured in the same run against the same broker: a bare paho publisher sending the
same 100,000 bodies at QoS 1 with the same in-flight window, counting PUBACKs (no SQLite, no
deletes). The uplink figure includes reading the rows, publishing, and committing the deletes.
Memory: resident set size sampled during the drain (it must stay flat, not grow with the
backlog). Plain script; exits 0 whatever the timing.

    .venv/bin/python bench/bench_uplink.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
import structlog  # noqa: E402
from common import figure  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from gated.config import MqttConfig  # noqa: E402
from gated.state.events import EventType  # noqa: E402
from gated.state.loop import Batch  # noqa: E402
from gated.uplink.service import Uplink  # noqa: E402
from tests.support.mosquitto import Broker  # noqa: E402
from tests.support.uplink_harness import BOOTH, BOOTH_PW, Booth, booth_config  # noqa: E402

WINDOW = 32


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bare_paho(port: int, bodies: list[bytes]) -> float:
    """Acknowledged messages per second with a window of WINDOW, like the drain."""
    sem = threading.Semaphore(WINDOW)
    done = threading.Event()
    acked = [0]

    def on_publish(c: mqtt.Client, u: object, mid: int, rc: object, p: object) -> None:
        acked[0] += 1
        sem.release()
        if acked[0] == len(bodies):
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, "bench-bare", protocol=mqtt.MQTTv5)
    c.username_pw_set(BOOTH, BOOTH_PW)
    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    for body in bodies:
        sem.acquire()
        c.publish("gated/v1/s1/east-gate/events/ticket.issued", body, qos=1)
    done.wait(600)
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return len(bodies) / elapsed


def fill(booth: Booth, n: int) -> None:
    for _ in range(max(1, n // 5000)):
        def job(b: Batch, k: int = min(5000, n)) -> None:
            for i in range(k):
                b.emit(EventType.TICKET_ISSUED, {"i": i, "service": "general",
                                                 "number": f"A{i % 1000:03d}"})
        booth.loop.call(job).result()


def drain(broker: Broker, booth: Booth, state: Path, rate: float,
          burst: int) -> tuple[float, list[float]]:
    """Drain the whole backlog once: (acked events/s, RSS samples in MiB)."""
    cfg = booth_config(broker, state, max_inflight=WINDOW, replay_rate=rate,
                       replay_burst=burst, status_interval_s=3600.0)
    up = Uplink(cfg, booth.store, booth.loop, booth.outbox, None, None, None)
    rss: list[float] = [rss_mib()]
    backlog = booth.outbox.depth
    t0 = time.perf_counter()
    up.start()
    # timed to the last PUBACK: the last deletes ride along with the state thread's next
    # commit or its tick, which a drain with no new events leaves to come
    while up.state()["acked"] < backlog and time.perf_counter() - t0 < 900:
        time.sleep(0.01)
        if len(rss) < (time.perf_counter() - t0) * 4:
            rss.append(rss_mib())
    elapsed = time.perf_counter() - t0
    st = up.state()
    while booth.outbox.depth > 0 and time.perf_counter() - t0 < 900:
        time.sleep(0.1)
    up.stop()
    return st["acked"] / elapsed, rss


BENCH = "uplink"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    defaults = MqttConfig()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        broker = Broker(d / "broker", users={"centre": "centre-pw", BOOTH: BOOTH_PW},
                        message_size_limit=1024 * 1024)
        broker.start()
        booth = Booth(d / "state")
        try:
            t0 = time.perf_counter()
            fill(booth, n)
            print(f"backlog: {n} events written in {time.perf_counter() - t0:.1f} s")
            bodies = [r[0].encode() for r in booth.query(
                "SELECT body FROM events ORDER BY seq")]
            size = sum(map(len, bodies)) / len(bodies)
            baseline = bare_paho(broker.port, bodies)
            del bodies
            rate, rss = drain(broker, booth, d / "state", 1e9, 1_000_000)
            # The default paces a backlog (replay_rate, replay_burst): a smaller one, so the
            # figure takes seconds, not minutes.
            paced_n = min(n, 10 * int(defaults.replay_rate))
            fill(booth, paced_n)
            paced, _ = drain(broker, booth, d / "state", defaults.replay_rate,
                             defaults.replay_burst)
            print(f"event body: {size:.0f} bytes; in-flight window {WINDOW}; QoS 1")
            figure(BENCH, "uplink drain, replay_rate unlimited (incl. SQLite)", rate,
                   "events/s", baseline=baseline, baseline_name="bare paho publisher",
                   target=">= 80% of baseline", note=f"{rate / baseline:.0%}")
            figure(BENCH, f"uplink drain at the default replay_rate {defaults.replay_rate:g}/s",
                   paced, "events/s", baseline=baseline, baseline_name="bare paho publisher",
                   note=f"burst {defaults.replay_burst}, {paced_n} events: paced on purpose")
            figure(BENCH, "RSS during the unlimited drain, max", max(rss), "MiB",
                   note=f"start {rss[0]:.1f}, end {rss[-1]:.1f} MiB")
            print(f"state thread commits during the drains: {booth.loop.commits}")
        finally:
            booth.close()
            broker.stop()


if __name__ == "__main__":
    main()
