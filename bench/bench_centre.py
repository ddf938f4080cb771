"""The reference ingest's throughput into PostgreSQL with 1, 2 and 4 workers, next to a bare
COPY of the same rows in the same run; then 1,000 simulated booths coming back at once, each
replaying its backlog at its own rate, absorbed without loss.

Everything is local: a mosquitto (the tests' Broker, without the refused topic) and a
PostgreSQL cluster (the tests' Postgres, fsync and synchronous_commit on, as shipped) on
loopback ports, ``gated centre ingest`` workers as real processes in one shared-subscription
group.

Throughput: the workers connect once (their persistent sessions join the group) and stop; N
events are queued at the broker for them; then all start at once, and the rate is N over the
time from the first committed batch to the last (``received_at``: each batch's transaction
time). Baseline: the same N rows (same columns, same JSON) written with one ``COPY`` into a
table with the same keys and indexes, in the same database and run.

Backlog: ``--booths`` MQTT connections (a few processes, each driving its connections with
one select loop) each publish ``--backlog`` events at QoS 1 with a window of 32 and a token
bucket of ``--rate`` events/s (the booth's ``replay_rate``), all starting at once, into two
workers; the figure is the rate until every event is in the database once, next to the
same two workers' rate on queued events (above), with what was lost, stored twice or
quarantined. Exits 0 whatever the timing.

    .venv/bin/python bench/bench_centre.py [--events 60000] [--booths 1000] [--backlog 100]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import select
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402
from common import figure  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from gated.centre.schema import migrate  # noqa: E402
from gated.state.events import Event, EventType, new_event_id  # noqa: E402
from tests.centre.postgres import Postgres  # noqa: E402
from tests.centre.support import IngestProcess, centre_config  # noqa: E402
from tests.support.mosquitto import CENTRE_USER, Broker  # noqa: E402

BENCH = "centre"
WINDOW = 32


def body(site: str, booth: str, seq: int) -> bytes:
    """A ticket.issued envelope as a booth sends it (about 330 bytes)."""
    e = Event.make(EventType.TICKET_ISSUED, {
        "ticket_id": new_event_id(), "number": f"A{seq % 1000:03d}", "service": "social",
        "priority": seq % 7 == 0, "priority_reason": None, "state": "waiting", "counter": None,
        "recalls": 0, "ahead": seq % 13, "wait_min": 4.5, "visitor": "walk_in",
        "appointment_ref": None})
    ev = Event(type=e.type, payload=e.payload, priority=e.priority, id=e.id, ts=e.ts, seq=seq)
    return ev.to_json_bytes(site, booth, 1)


def topic(site: str, booth: str) -> str:
    return f"gated/v1/{site}/{booth}/events/ticket.issued"


# ---------------------------------------------------------------------- publishers
def publish_all(port: int, password: str, items: list[tuple[str, bytes]]) -> None:
    """One QoS 1 publisher with a window of WINDOW (to queue a backlog at the broker)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, f"bench-pub-{time.time_ns()}",
                    protocol=mqtt.MQTTv5)
    c.username_pw_set(CENTRE_USER, password)
    c.max_inflight_messages_set(WINDOW)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port, 60)
    c.loop_start()
    infos = [c.publish(t, b, qos=1) for t, b in items]
    for info in infos:
        info.wait_for_publish(60)
    c.disconnect()
    c.loop_stop()


def booths_process(port: int, password: str, first: int, count: int, backlog: int,
                   rate: float, go_at: float) -> None:
    """``count`` booths on one select loop; each publishes ``backlog`` events at ``rate``/s
    with at most WINDOW unacknowledged, from ``go_at`` (wall clock) on."""
    booths = []
    for i in range(first, first + count):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, f"bench-booth-{i}", protocol=mqtt.MQTTv5)
        c.username_pw_set(CENTRE_USER, password)
        c.max_inflight_messages_set(WINDOW)
        state = {"acked": 0, "sent": 0, "tokens": 1.0}
        c.on_publish = lambda cl, u, mid, rc, p, s=state: s.__setitem__("acked", s["acked"] + 1)
        c.connect("127.0.0.1", port, 120)
        site, booth = f"site{i % 50:02d}", f"booth{i:04d}"
        bodies = [body(site, booth, s) for s in range(1, backlog + 1)]
        booths.append((c, state, topic(site, booth), bodies))
    time.sleep(max(0.0, go_at - time.time()))
    last = time.monotonic()
    while any(s["acked"] < backlog for _, s, _, _ in booths):
        now = time.monotonic()
        for c, s, t, bodies in booths:
            s["tokens"] = min(WINDOW, s["tokens"] + (now - last) * rate)
            while (s["sent"] < backlog and s["sent"] - s["acked"] < WINDOW
                   and s["tokens"] >= 1.0):
                c.publish(t, bodies[s["sent"]], qos=1)
                s["sent"] += 1
                s["tokens"] -= 1.0
        last = now
        socks = {c.socket(): c for c, _, _, _ in booths if c.socket() is not None}
        wants = [k for k, c in socks.items() if c.want_write()]
        readable, writable, _ = select.select(list(socks), wants, [], 0.01)
        for k in readable:
            socks[k].loop_read()
        for k in writable:
            socks[k].loop_write()
        for c, _, _, _ in booths:
            c.loop_misc()
    for c, _, _, _ in booths:
        c.disconnect()


# ---------------------------------------------------------------------- measuring
def count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0


def span_s(dsn: str) -> float:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT extract(epoch FROM max(received_at) - min(received_at)) "
                           "FROM events").fetchone()
        return float(row[0]) if row and row[0] is not None else 0.0


def wait_count(dsn: str, n: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count(dsn) >= n:
            return True
        time.sleep(0.1)
    return False


def fresh_db(pg: Postgres) -> str:
    dsn = pg.dsn(pg.create_db("bench"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn, timezone="Asia/Shanghai")
    return dsn


def start_workers(cfg: Path, n: int, work: Path, tag: str) -> list[IngestProcess]:
    ws = [IngestProcess(cfg, f"{tag}-{i}", work).start() for i in range(n)]
    deadline = time.monotonic() + 30
    while not all(w.log_events("ingest_mqtt_connected") for w in ws):
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers did not connect: {ws[0].log_path}")
        time.sleep(0.05)
    return ws


def throughput(pg: Postgres, broker: Broker, work: Path, workers: int, n: int) -> float:
    dsn = fresh_db(pg)
    cfg = centre_config(work, broker, dsn, group=f"bench{workers}")
    for w in start_workers(cfg, workers, work, f"t{workers}"):
        w.terminate()  # their sessions stay in the group and queue their share
    items = [(topic(f"site{b:02d}", f"booth{b:03d}"), body(f"site{b:02d}", f"booth{b:03d}", s))
             for s in range(1, n // 100 + 1) for b in range(100)]
    publish_all(broker.port, broker.users[CENTRE_USER], items)
    ws = start_workers(cfg, workers, work, f"t{workers}")
    ok = wait_count(dsn, len(items), 600)
    for w in ws:
        w.terminate()
    if not ok:
        raise RuntimeError(f"only {count(dsn)} of {len(items)} stored")
    return len(items) / span_s(dsn)


def copy_baseline(pg: Postgres, n: int) -> float:
    """One COPY of the same rows into a table with the same keys and indexes."""
    dsn = fresh_db(pg)
    rows = []
    for s in range(1, n // 100 + 1):
        for b in range(100):
            doc = json.loads(body(f"site{b:02d}", f"booth{b:03d}", s))
            rows.append((doc["site"], doc["booth"], doc["seq"], doc["id"], doc["type"],
                         datetime.fromisoformat(doc["ts"]), doc["clock_ok"], None, doc["schema"],
                         doc["priority"], json.dumps(doc["data"]), datetime.now(UTC)))
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE copied (LIKE events INCLUDING ALL)")
        conn.commit()
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                "COPY copied (site, booth, seq, id, type, ts, clock_ok, session, schema, "
                "priority, data, received_at) FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)
        conn.commit()
        return len(rows) / (time.perf_counter() - t0)


def backlog(pg: Postgres, broker: Broker, work: Path, booths: int, per_booth: int,
            rate: float, queued_rate: float) -> None:
    dsn = fresh_db(pg)
    cfg = centre_config(work, broker, dsn, group="backlog")
    ws = start_workers(cfg, 2, work, "backlog")
    procs = 4
    go_at = time.time() + 5.0 + booths / 400  # every connection made first
    ctx = multiprocessing.get_context("spawn")
    ps = [ctx.Process(target=booths_process, args=(
        broker.port, broker.users[CENTRE_USER], i * (booths // procs), booths // procs,
        per_booth, rate, go_at)) for i in range(procs)]
    for p in ps:
        p.start()
    total = (booths // procs) * procs * per_booth
    time.sleep(max(0.0, go_at - time.time()))
    t0 = time.monotonic()
    ok = wait_count(dsn, total, 900)
    took = time.monotonic() - t0
    for p in ps:
        p.join(60)
    for w in ws:
        w.terminate()
    with psycopg.connect(dsn) as conn:
        dup = conn.execute("SELECT count(*) - count(DISTINCT (site, booth, seq)) FROM events"
                           ).fetchone()
        bad = conn.execute("SELECT count(*) FROM quarantine").fetchone()
    stored = count(dsn)
    figure(BENCH, f"backlog: {booths:,} booths x {per_booth} events at {rate:g}/s each, "
           "2 workers", stored / took, "events/s", baseline=queued_rate,
           baseline_name="2 workers, queued events",
           note=f"{stored:,} of {total:,} stored in {took:.1f} s, "
           f"{dup[0] if dup else '?'} twice, {bad[0] if bad else '?'} quarantined, "
           f"{'none lost' if ok and stored == total else 'INCOMPLETE'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--booths", type=int, default=1000)
    ap.add_argument("--backlog", type=int, default=100, help="events per booth")
    ap.add_argument("--rate", type=float, default=500.0, help="each booth's replay_rate")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-centre-") as tmp:
        work = Path(tmp)
        pg = Postgres().start()
        broker = Broker(work / "broker", denied_event=None)
        broker.start()
        try:
            base = copy_baseline(pg, args.events)
            figure(BENCH, f"bare COPY of {args.events:,} event rows (same table shape)", base,
                   "rows/s")
            rates = {}
            for n in (1, 2, 4):
                rates[n] = throughput(pg, broker, work, n, args.events)
                figure(BENCH, f"ingest, {n} worker(s), {args.events:,} queued events", rates[n],
                       "events/s", baseline=base, baseline_name="bare COPY",
                       note=f"{rates[n] / base:.0%} of COPY")
            backlog(pg, broker, work, args.booths, args.backlog, args.rate, rates[2])
        finally:
            broker.stop()
            pg.close()
            subprocess.run(["sync"], check=False)


if __name__ == "__main__":
    main()
