"""Durable outbox appends (synchronous=FULL): group commit vs one commit per event.

Prints events/s and per-append latency (submit -> durable) for both, measured in the same run
on the same disk. Two baselines: one thread committing each event (the cheapest possible
one-commit loop, no thread hand-offs) and the same producer threads each committing their own
event (the design group commit replaces). Targets (issue 2): group commit >= 4x the one-commit
rate, each append durable within 5 ms (p99). The daemon's devices post events and never wait
(DESIGN.md, Concurrency), so the headline is whether four posting devices keep 4x the
baseline with p99 <= 5 ms, and the highest multiple (up to 24x) they keep; the waiting
producers' row shows the other case, where the GIL serialises sixteen Python threads' own work
with the state thread's.

    python bench/bench_outbox.py [--events 4000] [--producers 16] [--dir DIR]
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from common import figure

from gated.config import OutboxConfig
from gated.state.events import Event, EventType
from gated.state.loop import StateLoop
from gated.state.outbox import Outbox, ensure_schema
from gated.state.store import Store

PAYLOAD = {"ticket": "A042", "service": "general", "pseudonym": "p" * 32, "age_band": "60-69"}


def _open(d: Path) -> tuple[Store, Outbox]:
    store = Store(d, [ensure_schema])
    store.open()
    return store, Outbox(store, OutboxConfig(max_rows=10_000_000), "s", "b")


def one_commit_per_event(d: Path, n: int) -> tuple[float, list[float]]:
    store, ob = _open(d)
    lat = []
    t0 = time.perf_counter()
    for _ in range(n):
        s = time.perf_counter()
        with store.transaction():
            ob.append(Event.make(EventType.TICKET_ISSUED, PAYLOAD))
        lat.append(time.perf_counter() - s)
    rate = n / (time.perf_counter() - t0)
    store.close()
    return rate, lat


def _producers(producers: int, per: int, append: Callable[[], None]) -> tuple[float, list[float]]:
    """``producers`` threads each calling ``append`` ``per`` times: rate and latencies."""
    lat: list[float] = []
    lock = threading.Lock()

    def produce() -> None:
        mine = []
        for _ in range(per):
            s = time.perf_counter()
            append()
            mine.append(time.perf_counter() - s)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=produce) for _ in range(producers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per * producers / (time.perf_counter() - t0), lat


def one_commit_concurrent(d: Path, n: int, producers: int) -> tuple[float, list[float]]:
    """The design group commit replaces: each device thread commits its own event (one
    connection, a lock around each transaction), under the same concurrency as ``group_commit``."""
    store, ob = _open(d)
    guard = threading.Lock()

    def append() -> None:
        with guard, store.transaction():
            ob.append(Event.make(EventType.TICKET_ISSUED, PAYLOAD))

    rate, lat = _producers(producers, n // producers, append)
    store.close()
    return rate, lat


def group_commit(d: Path, n: int, producers: int) -> tuple[float, list[float], int]:
    store, ob = _open(d)
    loop = StateLoop(store, ob)
    loop.start()

    def append() -> None:
        loop.call(lambda b: b.emit(EventType.TICKET_ISSUED, PAYLOAD)).result()

    rate, lat = _producers(producers, n // producers, append)
    commits = loop.commits
    loop.stop()
    store.close()
    return rate, lat, commits


def posted(d: Path, n: int, producers: int, rate: float) -> tuple[float, list[float], int]:
    """The daemon's real path: device threads ``post`` and never wait; durability is when the
    commit that holds the event is on disk (``on_commit``). Offered at ``rate`` events/s in
    total, in bursts of 8 per producer, to see whether that rate is sustained within 5 ms."""
    store, ob = _open(d)
    loop = StateLoop(store, ob)
    submitted: dict[int, float] = {}
    lat: list[float] = []
    done = threading.Event()

    def committed(events: list[Event]) -> None:
        now = time.perf_counter()
        for e in events:
            k = e.payload.get("k")
            if isinstance(k, int) and k in submitted:
                lat.append(now - submitted.pop(k))
        if len(lat) >= n:
            done.set()
    per = n // producers
    n = per * producers
    loop.on_commit.append(committed)
    loop.start()

    burst = 8
    gap = burst * producers / rate

    def produce(base: int) -> None:
        start = time.perf_counter()
        for i in range(per):
            k = base + i
            payload = {**PAYLOAD, "k": k}
            submitted[k] = time.perf_counter()
            loop.post(lambda b, p=payload: b.emit(EventType.TICKET_ISSUED, p))  # type: ignore[misc]
            if i % burst == burst - 1:
                wait = start + (i // burst + 1) * gap - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)

    threads = [threading.Thread(target=produce, args=(j * per,)) for j in range(producers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.wait(60)
    rate = len(lat) / (time.perf_counter() - t0)
    commits = loop.commits
    loop.stop()
    store.close()
    return rate, lat, commits


def fsync_us(d: Path, n: int = 200) -> float:
    """The disk's own cost of one durable write: what group commit amortises."""
    import os

    d.mkdir(parents=True, exist_ok=True)
    path = d / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            os.write(fd, b"x" * 128)
            os.fsync(fd)
        return (time.perf_counter() - t0) / n * 1e6
    finally:
        os.close(fd)
        path.unlink()


def pct(xs: list[float], p: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(len(xs) * p))] * 1000


BENCH = "outbox"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=4000)
    ap.add_argument("--producers", type=int, default=16)
    ap.add_argument("--dir", type=Path, default=None, help="disk to test (default: a temp dir)")
    a = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    gc.freeze()  # as the daemon does once it is ready (gated/app.py)
    base = a.dir or Path(tempfile.mkdtemp(prefix="bench-outbox-"))
    print(f"disk: one write+fsync = {fsync_us(base):.0f} us (an SD card: 2000-20000 us; the "
          f"speed-up grows with it)")
    r1, l1 = one_commit_per_event(base / "single", a.events // 4)
    r1c, l1c = one_commit_concurrent(base / "single-threads", a.events // 4, a.producers)
    r2, l2, commits = group_commit(base / "group", a.events, a.producers)
    print(f"{'mode':<30}{'events/s':>10}{'x base':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'ev/commit':>11}")

    def row(name: str, rate: float, lat: list[float], per_commit: float) -> None:
        print(f"{name:<30}{rate:>10.0f}{rate / r1:>8.1f}{statistics.median(lat) * 1000:>9.2f}"
              f"{pct(lat, 0.99):>9.2f}{max(lat) * 1000:>9.2f}{per_commit:>11.1f}")

    row("baseline: 1 commit/event", r1, l1, 1)
    row(f"1 commit/event, {a.producers} threads", r1c, l1c, 1)
    row(f"group, {a.producers} producers wait", r2, l2, a.events / commits)
    # The daemon's own path: devices post and go on, offered at rising multiples of the
    # baseline. A row is kept when its rate holds and its p99 is within 5 ms; all rows run (one
    # slow commit of the disk can fail a row a higher one passes). Each runs for at least 2 s,
    # so that it meets the WAL checkpoints a longer run would (a short one at a high rate ends
    # before the checkpointer's first look).
    kept: dict[int, float] = {}
    for multiple in (4, 6, 8, 12, 16, 24):
        n = max(a.events * 2, int(multiple * r1 * 2.0))
        r3, l3, commits3 = posted(base / f"posted-{multiple}", n, 4, rate=multiple * r1)
        row(f"group, 4 devices post at {multiple}x", r3, l3, n / commits3)
        if r3 >= 0.95 * multiple * r1 and pct(l3, 0.99) <= 5.0:
            kept[multiple] = pct(l3, 0.99)
    figure(BENCH, "group commit, producers waiting", r2, "events/s", baseline=r1,
           baseline_name="1 commit/event", note=f"p99 {pct(l2, 0.99):.2f} ms")
    figure(BENCH, "highest multiple of the baseline rate kept, p99 <= 5 ms",
           float(max(kept, default=0)), "x", baseline=1.0, baseline_name="1 commit/event",
           target=">= 4x", note=f"4x p99 {kept[4]:.2f} ms" if 4 in kept else "4x not kept")


if __name__ == "__main__":
    main()
