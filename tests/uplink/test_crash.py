"""10,000 events through a broker restarted three times and a booth killed with SIGKILL once:
the centre sees every id, in per-booth seq order per lane, duplicates only around lost acks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gated.uplink.drain import ACK_BATCH
from tests.support.mosquitto import Broker, env_has_mosquitto
from tests.support.uplink_harness import BOOTH, BOOTH_PW, SITE, Centre, check_order

ROOT = Path(__file__).resolve().parents[2]
TOTAL = 10_000

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not env_has_mosquitto(), reason="mosquitto not installed")]


class Writer:
    def __init__(self, state_dir: Path, port: int, count: int) -> None:
        self.lines: list[tuple[int, str]] = []
        self.done = threading.Event()
        self._log = open(state_dir.parent / f"writer-{time.monotonic_ns()}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.uplink_writer", str(state_dir), str(port),
             str(count)], cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode().strip()
            if line == "done":
                self.done.set()
            else:
                parts = line.split()
                if len(parts) == 2 and parts[0].isdigit():
                    self.lines.append((int(parts[0]), parts[1]))

    def wait_lines(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.lines) < n and time.monotonic() < deadline:
            assert self.proc.poll() is None, "writer died"
            time.sleep(0.01)
        assert len(self.lines) >= n

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._t.join(5)
        self._log.close()


@pytest.mark.timeout(180)
def test_ten_thousand_events_survive_broker_restarts_and_sigkill(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker", users={"centre": "centre-pw", BOOTH: BOOTH_PW})
    broker.start()
    centre = Centre(broker, client_id="centre-crash").start()
    writers: list[Writer] = []
    try:
        a = Writer(tmp_path / "state", broker.port, 6000)
        writers.append(a)
        a.wait_lines(1500)
        broker.restart()  # 1
        a.wait_lines(3500)
        a.kill()  # mid-burst, acks possibly uncommitted, PUBACKs possibly unread
        status = f"gated/v1/{SITE}/{BOOTH}/status"

        def wills() -> list[dict[str, object]]:  # the broker's restart published one too
            return [m.body for m in centre.messages
                    if m.topic == status and m.body.get("reason") == "lost"]
        # one of the first writer's connections was lost (the broker's restart cut one, the
        # kill the one after, if it had reconnected by then)
        assert centre.wait_for(lambda: bool(wills()), 20), "no last will"
        will = wills()[-1]
        # it cannot know when the booth went silent: no ts, but the session, the connection
        # and the keepalive that bound it
        assert "ts" not in will and will["keepalive_s"] == 30
        first = will["session"]
        assert isinstance(first, int)
        b = Writer(tmp_path / "state", broker.port, TOTAL - len(a.lines))
        writers.append(b)
        b.wait_lines(1000)
        broker.restart()  # 2
        b.wait_lines(4000)
        broker.restart()  # 3
        assert b.done.wait(60)
        committed = {eid for w in writers for _, eid in w.lines}
        assert len(committed) >= TOTAL
        assert centre.wait_for(
            lambda: committed <= {m.body["id"] for m in centre.events()}, 90), \
            f"missing {len(committed - {m.body['id'] for m in centre.events()})} ids"
        tickets = [m for m in centre.events() if m.topic.endswith("/ticket.issued")]
        unique, dups = check_order(tickets)
        assert unique >= TOTAL
        # Duplicates come only from messages in flight when a connection or the process died
        # (at most a window, 32, per incident: 3 restarts + 1 kill) and, at the kill, acked
        # rows whose delete had not committed: batches of ACK_BATCH, several of which can
        # wait behind this burst's own commits on the state thread (a broker restart keeps
        # them in acked_pending and sends none of them again). Seen: 77-236.
        assert dups <= 4 * 32 + 4 * ACK_BATCH, f"{dups} duplicates"
        # the killed writer's events carry its session, the restarted one's the next
        assert {m.body["session"] for m in tickets} == {first, first + 1}
        assert any(m.topic == status and m.body.get("online") and m.body["session"] == first + 1
                   for m in centre.messages)
        seqs = {m.body["id"]: m.body["seq"] for m in tickets}
        assert all(seqs[eid] == seq for w in writers for seq, eid in w.lines)
        print(f"crash test: {unique} unique events, {dups} duplicates")
    finally:
        for w in writers:
            if w.proc.poll() is None:
                w.kill()
        centre.stop()
        broker.stop()
