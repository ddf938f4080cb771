"""`gated run` as systemd runs it: a real process, READY/STOPPING over NOTIFY_SOCKET, the local
CLI over the control socket, SIGHUP reload, SIGTERM stop, restart on the same state."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.sim.barrier_arm import Button
from gated.simulate import SimBooth
from tests.support.cards import ADULT
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(90)


def gated(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gated.cli", *args], capture_output=True,
                          text=True, timeout=30)


def wait(pred, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimBooth]:
    with SimBooth(tmp_path / "sim", mqtt="off") as s:
        yield s


def devices_ready(cfg: Path) -> bool:
    out = gated("status", "-c", str(cfg))
    if out.returncode:
        return False
    devices = json.loads(out.stdout)["status"]["devices"]
    return all(d["state"] == "ready" for d in devices.values())


def test_run_serve_reload_stop_restart(sim: SimBooth, tmp_path: Path) -> None:
    cfg = str(sim.config_path)
    with DaemonProcess(sim.config_path, tmp_path) as d:
        d.wait_for("READY=1")
        wait(lambda: devices_ready(sim.config_path), 20)
        out = gated("ctl", "-c", cfg, "manual_ticket", "service=social")
        assert out.returncode == 0, out.stderr
        assert sim.printer.wait_tickets(1, 10)
        assert "B001" in sim.printer.tickets[0].text
        sim.reader.present(ADULT)
        wait(lambda: sim.hall.presses(Button.OPEN) >= 1)
        sim.reader.remove()
        called = json.loads(gated("ctl", "-c", cfg, "call_next", "counter=1").stdout)
        assert called["ticket"]["number"] in ("A001", "B001")
        bad = gated("ctl", "-c", cfg, "set_zone_mode", "zone=hall", "mode=party")
        assert bad.returncode == 1 and json.loads(bad.stdout)["reason"] == "bad_mode"
        # SIGHUP with a broken file: the daemon says why and keeps running on the old config
        good = sim.config_path.read_text(encoding="utf-8")
        sim.config_path.write_text(good + "\n[outbox]\nmax_rowz = 5\n", encoding="utf-8")
        assert d.proc is not None
        d.proc.send_signal(signal.SIGHUP)
        wait(lambda: "config_reload_failed" in d.log_path.read_text(errors="replace"))
        sim.config_path.write_text(good, encoding="utf-8")
        assert gated("status", "-c", cfg).returncode == 0
        assert d.terminate() == 0
        d.wait_for("STOPPING=1", 5)
    stats = json.loads(gated("outbox", "stats", "--json", "-c", cfg).stdout)
    assert stats["depth"] > 5
    with DaemonProcess(sim.config_path, tmp_path) as d:
        d.wait_for("READY=1")
        wait(lambda: devices_ready(sim.config_path), 20)
        again = json.loads(gated("ctl", "-c", cfg, "manual_ticket", "service=social").stdout)
        assert again["ok"]
        assert d.terminate() == 0
    db = sqlite3.connect(sim.directory / "state" / "gated.db")
    numbers = [r[0] for r in db.execute("SELECT number FROM q_tickets WHERE service = 'social'")]
    types = [r[0] for r in db.execute("SELECT type FROM events ORDER BY seq")]
    db.close()
    assert numbers == ["B001", "B002"]
    assert types.count("booth.started") == 2 and types.count("booth.stopped") == 2


def test_startup_errors_are_clear(sim: SimBooth, tmp_path: Path) -> None:
    text = sim.config_path.read_text(encoding="utf-8")
    missing_key = tmp_path / "nokey.toml"
    missing_key.write_text(text.replace(str(sim.directory / "site.key"),
                                        str(tmp_path / "absent.key")), encoding="utf-8")
    out = gated("run", "-c", str(missing_key))
    assert out.returncode == 1 and "gated keygen" in out.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text(text + "\n[booth]\nid = 'x'\n", encoding="utf-8")
    out = gated("run", "-c", str(broken))
    assert out.returncode == 78 and "broken.toml" in out.stderr


def test_unplugged_device_keeps_the_daemon_serving(sim: SimBooth, tmp_path: Path) -> None:
    with DaemonProcess(sim.config_path, tmp_path) as d:
        d.wait_for("READY=1")
        wait(lambda: devices_ready(sim.config_path), 20)
        sim.office.unplug()
        sim.printer.unplug()

        def offline() -> bool:
            status = json.loads(gated("status", "-c", str(sim.config_path)).stdout)["status"]
            return (status["devices"]["printer"]["state"] == "offline"
                    and status["devices"]["office_gate"]["state"] == "offline")
        wait(offline, 15)
        sim.reader.present(ADULT)
        wait(lambda: sim.hall.presses(Button.OPEN) >= 1)
        reprints = json.loads(gated("ctl", "-c", str(sim.config_path), "reprints").stdout)
        assert len(reprints["reprints"]) == 1
        assert d.terminate() == 0
