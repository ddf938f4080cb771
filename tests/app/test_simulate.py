"""The README's first command: ``gated simulate`` runs the real daemon against the simulators,
serves simulated visitors with no broker, and stops cleanly on Ctrl-C, saying where its state
is. Run as a real process, as a new user runs it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.hall import free_port
from tests.support.polling import wait_for

pytestmark = pytest.mark.timeout(90)


def hall_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(json.loads(r.read())["daemon_ok"])
    except OSError:
        return False


def test_simulate_serves_visitors_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    d = tmp_path / "sim"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gated.app.cli", "simulate", "--dir", str(d), "--mqtt", "off",
         "--visitors-per-min", "120", "--seed", "7", "--hall", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(list((d / "tickets").glob("*.txt"))) >= 2 or proc.poll() is not None,
                 60, "two printed tickets")
        assert proc.poll() is None, proc.communicate()
        # the hall's screens run beside it, as a process of their own, connected to the daemon
        wait_for(lambda: hall_answers(f"http://127.0.0.1:{port}/healthz"), 30, "gated hall")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    summary = out[out.index("simulation stopped:"):]
    visitors, printed = map(int, re.search(
        r"(\d+) visitors .* (\d+) tickets printed", summary).groups())  # type: ignore[union-attr]
    assert visitors >= 2 and printed >= 2
    for device in ("id_reader", "hall_gate", "office_gate", "printer"):
        assert f"{device} ready" in summary
    waiting = int(re.search(r"outbox:\s+(\d+) events waiting", summary).group(1))  # type: ignore[union-attr]
    cfg = d / "gated.toml"
    assert f"gated outbox stats -c {cfg}" in summary and str(d / "tickets") in summary
    # no broker: every event is still in the outbox, and the stats command reads the same
    stats = json.loads(subprocess.run(
        [sys.executable, "-m", "gated.app.cli", "outbox", "stats", "--json", "-c", str(cfg)],
        capture_output=True, text=True, check=True).stdout)
    assert waiting > 0 and stats["depth"] == waiting
    assert "Traceback" not in err
    assert f"http://127.0.0.1:{port}/display" in out
    assert "hall_started" in (d / "hall.log").read_text(errors="replace")
