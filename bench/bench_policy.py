"""Policy and queue speed: the decision function over random visitors with 50,000 list entries,
and ``call_next`` with 5,000 waiting tickets. Figures print next to baselines measured in the
same run (a dict lookup per decision; a bare indexed SELECT per call). Exit code 0 regardless.

    .venv/bin/python bench/bench_policy.py [--visitors 10000] [--entries 50000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import figure

from gated.booth import queueing
from gated.booth.lists import ListKind, Lists, entries_checksum
from gated.booth.queueing import Queue
from gated.config import parse_config
from gated.policy.credentials import CardValidity, Credential, CredentialKind
from gated.policy.decide import decide
from gated.state.store import Store

BENCH = "policy"
TZ = ZoneInfo("Asia/Shanghai")
CFG = parse_config('[site]\nid = "b"\n[booth]\nid = "b"\n[services.general]\nname = "g"\n'
                   'prefix = "A"\n[services.social]\nname = "s"\nprefix = "B"\n')
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def line(label: str, xs: list[float]) -> None:
    us = [x * 1e6 for x in xs]
    print(f"{label:<44} n={len(us):<6} mean={statistics.fmean(us):8.2f}  "
          f"p50={pct(us, .5):8.2f}  p99={pct(us, .99):8.2f}  max={max(us):9.2f} us")


def pair(label: str, xs: list[float], base: list[float], base_name: str) -> None:
    """The p50 and p99 of ``xs`` next to the same percentiles of ``base``, for ``bench/run``."""
    for p in (0.5, 0.99):
        figure(BENCH, f"{label}, p{int(p * 100)}", pct(xs, p) * 1e6, "us",
               baseline=pct(base, p) * 1e6, baseline_name=base_name)


def fill_lists(store: Store, n: int, rng: random.Random) -> Lists:
    """n entries split over the three lists, applied the way a centre snapshot is."""
    lists = Lists(store.conn)
    third = n // 3
    badges = [{"uid": f"{i:08X}", "zones": [], "revoked": i % 50 == 0, "label": "staff"}
              for i in range(third)]
    day = NOW.date().isoformat()
    appts = [{"ref": f"R{i}", "pseudonym": f"p{i:031d}", "service": "social", "zone": "office",
              "day": day, "start": "09:30", "end": "10:30", "priority": i % 7 == 0}
             for i in range(third)]
    alerts = [{"key": f"p{i:031d}", "level": "watch", "code": "x"}
              for i in range(0, n - 2 * third)]
    with store.transaction():
        for kind, entries in ((ListKind.STAFF_BADGES, badges), (ListKind.APPOINTMENTS, appts),
                              (ListKind.ALERTS, alerts)):
            lists.apply_snapshot(kind, 1, entries, entries_checksum(entries))
    return lists


def visitors(n: int, entries: int, rng: random.Random) -> list[Credential]:
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.15:
            out.append(Credential(kind=CredentialKind.BADGE, pseudonym="b",
                                  badge_uid=f"{rng.randrange(entries // 2):08X}"))
        else:
            out.append(Credential(kind=CredentialKind.ID_CARD,
                                  pseudonym=f"p{rng.randrange(entries):031d}",
                                  age=rng.randrange(18, 95), validity=CardValidity.VALID))
    return out


def bench_policy(n: int, entries: int) -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        from gated.booth.lists import Lists as L

        store = Store(Path(tmp), [L.ensure_schema])
        store.open()
        t0 = time.perf_counter()
        lists = fill_lists(store, entries, rng)
        print(f"lists: {entries} entries loaded in {time.perf_counter() - t0:.2f} s")
        creds = visitors(n, entries, rng)
        index = {f"p{i:031d}": i for i in range(entries)}
        base = []
        for c in creds:
            t = time.perf_counter()
            index.get(c.pseudonym)
            base.append(time.perf_counter() - t)
        dec = []
        for c in creds:
            t = time.perf_counter()
            decide(c, lists, CFG, NOW)
            dec.append(time.perf_counter() - t)
        store.close()
    line("baseline: dict lookup", base)
    line(f"decide() with {entries} list entries", dec)
    pair(f"decide() with {entries} list entries", dec, base, "dict lookup")


def bench_call_next(waiting: int, calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp), [queueing.ensure_schema])
        store.open()
        q = Queue(CFG)
        rng = random.Random(3)
        with store.transaction() as c:
            for i in range(waiting):
                q.issue(c, rng.choice(["general", "social"]), NOW + timedelta(seconds=i),
                        priority_reason="elderly" if rng.random() < 0.2 else None)
        base, lat = [], []
        now = NOW + timedelta(minutes=10)
        for i in range(calls):
            t = time.perf_counter()
            store.conn.execute("SELECT ticket_id FROM q_tickets WHERE state = 'waiting' AND "
                               "service IN ('general', 'social') AND lane = 'regular' "
                               "ORDER BY ord LIMIT 1").fetchone()
            base.append(time.perf_counter() - t)
            with store.transaction() as c:
                t = time.perf_counter()
                q.call_next(c, f"c{i % 6}", None, now)
                lat.append(time.perf_counter() - t)
            with store.transaction() as c:  # keep the queue at its size
                q.issue(c, "general", now)
        store.close()
    line("baseline: one indexed SELECT", base)
    line(f"call_next with {waiting} waiting", lat)
    pair(f"call_next with {waiting} waiting", lat, base, "one indexed SELECT")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--visitors", type=int, default=10_000)
    ap.add_argument("--entries", type=int, default=50_000)
    ap.add_argument("--waiting", type=int, default=5_000)
    ap.add_argument("--calls", type=int, default=1_000)
    a = ap.parse_args()
    print("== policy decision")
    bench_policy(a.visitors, a.entries)
    print("== queue: call_next (excluding the commit)")
    bench_call_next(a.waiting, a.calls)


if __name__ == "__main__":
    main()
