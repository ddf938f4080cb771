"""`gated run` as systemd runs it: a real process, READY/STOPPING over NOTIFY_SOCKET, the local
CLI over the control socket, SIGHUP reload, SIGTERM stop, restart on the same state."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.base import ButtonKind
from drivers.sim.barrier_arm import Button
from gated.app.simulate import SimBooth
from tests.support.booth import ROOT, booth_on_broker, devices_ready, gated, online_count
from tests.support.cards import ADULT
from tests.support.daemon import DaemonProcess
from tests.support.polling import wait_for

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimBooth]:
    with SimBooth(tmp_path / "sim", mqtt="off") as s:
        yield s


def test_run_serve_reload_stop_restart(sim: SimBooth, tmp_path: Path) -> None:
    cfg = str(sim.config_path)
    with DaemonProcess(sim.config_path, tmp_path) as d:
        d.wait_for("READY=1")
        wait_for(lambda: devices_ready(sim.config_path), 20)
        out = gated("ctl", "-c", cfg, "manual_ticket", "service=social")
        assert out.returncode == 0, out.stderr
        assert sim.printer.wait_tickets(1, 10)
        assert "B001" in sim.printer.tickets[0].text
        sim.reader.present(ADULT)
        wait_for(lambda: sim.hall.presses(Button.OPEN) >= 1)
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
        wait_for(lambda: "config_reload_failed" in d.log_path.read_text(errors="replace"))
        sim.config_path.write_text(good, encoding="utf-8")
        assert gated("status", "-c", cfg).returncode == 0
        assert d.terminate() == 0
        d.wait_for("STOPPING=1", 5)
    stats = json.loads(gated("outbox", "stats", "--json", "-c", cfg).stdout)
    assert stats["depth"] > 5
    with DaemonProcess(sim.config_path, tmp_path) as d:
        d.wait_for("READY=1")
        wait_for(lambda: devices_ready(sim.config_path), 20)
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
    assert out.returncode == 78 and "gated keygen" in out.stderr
    assert "site.key_file (line " in out.stderr
    typo = tmp_path / "typo.toml"
    typo.write_text(text.replace("[site]\n", '[site]\ntimezone = "Asia/Shangai"\n'),
                    encoding="utf-8")
    out = gated("run", "-c", str(typo))  # used to read cards and open nothing
    assert out.returncode == 78 and "did you mean 'Asia/Shanghai'" in out.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text(text + "\n[booth]\nid = 'x'\n", encoding="utf-8")
    out = gated("run", "-c", str(broken))
    assert out.returncode == 78 and "broken.toml" in out.stderr


def test_state_files_are_private_however_the_daemon_is_started(sim: SimBooth,
                                                                tmp_path: Path) -> None:
    """Not started by the unit (no UMask=), the daemon still keeps its state 0750/0640: an
    unprivileged user must not read the lists or the outbox."""
    state = sim.directory / "state"
    state.chmod(0o755)
    old = os.umask(0)
    try:
        with DaemonProcess(sim.config_path, tmp_path) as d:
            d.wait_for("READY=1")
            assert d.terminate() == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(state.stat().st_mode) == 0o750
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.iterdir() if p.is_file()}
    assert "gated.db" in modes and all(m & ~0o640 == 0 for m in modes.values()), modes
    assert "state_mode_tightened" in d.log_path.read_text(errors="replace")


@pytest.mark.timeout(120)
def test_threads_are_named_for_top_and_ps(tmp_path: Path) -> None:
    """top -H and ps -L read the kernel's thread names: each thread has its own."""
    with booth_on_broker(tmp_path) as (sim, centre), \
            DaemonProcess(sim.config_path, tmp_path) as d:
        d.wait_for("READY=1")
        assert centre.wait_for(lambda: online_count(centre) >= 1, 20)
        assert d.proc is not None
        task = Path(f"/proc/{d.proc.pid}/task")

        def names() -> set[str]:
            return {(t / "comm").read_text().strip() for t in task.iterdir()}
        want = {"gated-state", "gated-wal", "gated-control", "gated-log", "dev-hall_gate",
                "dev-office_gate", "dev-printer", "dev-id_reader", "gated-mqtt-net",
                "gated-mqtt-stat", "gated-mqtt-rpc"}
        wait_for(lambda: want <= names(), 10, f"thread names {want - names()}")
        assert not {n for n in names() if n.startswith("paho")}  # no thread of paho's own
        assert d.terminate() == 0


def test_unplugged_device_keeps_the_daemon_serving(sim: SimBooth, tmp_path: Path) -> None:
    with DaemonProcess(sim.config_path, tmp_path) as d:
        d.wait_for("READY=1")
        wait_for(lambda: devices_ready(sim.config_path), 20)
        sim.office.unplug()
        sim.printer.unplug()

        def offline() -> bool:
            status = json.loads(gated("status", "-c", str(sim.config_path)).stdout)["status"]
            return (status["devices"]["printer"]["state"] == "offline"
                    and status["devices"]["office_gate"]["state"] == "offline")
        wait_for(offline, 15)
        sim.reader.present(ADULT)
        wait_for(lambda: sim.hall.presses(Button.OPEN) >= 1)
        reprints = json.loads(gated("ctl", "-c", str(sim.config_path), "reprints").stdout)
        assert len(reprints["reprints"]) == 1
        assert d.terminate() == 0


def test_lists_import_of_a_real_sized_list(sim: SimBooth, tmp_path: Path) -> None:
    """`gated lists import FILE` with 5,000 badges (well above one MQTT command's size), then a
    file with a wrong checksum: refused whole with its reason, the first list stays."""
    from gated.booth.lists import entries_checksum

    entries = [{"uid": f"04{i:06X}", "zones": ["office"], "revoked": False, "label": "staff",
                "valid_until": None} for i in range(5000)]
    good = tmp_path / "staff.json"
    good.write_text(json.dumps({"list": "staff_badges", "version": 7, "entries": entries,
                                "checksum": entries_checksum(entries)}), encoding="utf-8")
    bad = tmp_path / "staff-bad.json"
    bad.write_text(json.dumps({"list": "staff_badges", "version": 8, "entries": entries[:10],
                               "checksum": "0" * 64}), encoding="utf-8")
    cfg = str(sim.config_path)
    with DaemonProcess(sim.config_path, tmp_path) as d:
        d.wait_for("READY=1")
        out = gated("lists", "import", "-c", cfg, str(good))
        assert out.returncode == 0, out.stdout + out.stderr
        assert json.loads(out.stdout)["entries"] == 5000
        out = gated("lists", "import", "-c", cfg, str(bad))
        assert out.returncode == 1 and json.loads(out.stdout)["reason"] == "bad_checksum"
        status = json.loads(gated("status", "-c", cfg).stdout)["status"]
        assert status["lists"]["staff_badges"] == 7
        assert d.terminate() == 0


@pytest.mark.timeout(120)
def test_reload_config_sent_over_mqtt_reconnects_the_uplink(tmp_path: Path) -> None:
    """The reload command arrives on the uplink's own command worker, which the reload
    restarts: the reply still goes out, and the booth comes back and answers commands."""
    with booth_on_broker(tmp_path) as (sim, centre), \
            DaemonProcess(sim.config_path, tmp_path) as d:
        d.wait_for("READY=1")
        assert centre.wait_for(lambda: online_count(centre) >= 1, 20)
        text = sim.config_path.read_text(encoding="utf-8")
        sim.config_path.write_text(text.replace("[mqtt]\n", "[mqtt]\nkeepalive_s = 45\n"),
                                   encoding="utf-8")
        before = online_count(centre)
        reply = centre.command(ROOT, "reload_config")
        assert reply["ok"] is True and reply["uplink"] == "reconnecting", reply
        assert centre.wait_for(lambda: online_count(centre) > before, 20)
        assert centre.command(ROOT, "get_status")["ok"] is True
        assert "cannot join current thread" not in d.log_path.read_text(errors="replace")
        assert d.terminate() == 0


@pytest.mark.timeout(120)
def test_only_signed_commands_let_anyone_through_over_mqtt(tmp_path: Path) -> None:
    """Whoever can publish on the broker must not open a gate: open_gate, manual_ticket (it
    opens the hall gate) and register_guest need the command key's signature, and a whole-list
    import is local only. A signed open_gate does move the simulated relay board."""
    from gated.commands.registry import sign_command

    key = bytes(range(32))
    (tmp_path / "command.key").write_text(key.hex() + "\n")
    (tmp_path / "command.key").chmod(0o600)
    extra = f'command_key_file = "{tmp_path / "command.key"}"\n'
    with booth_on_broker(tmp_path, extra) as (sim, centre), \
            DaemonProcess(sim.config_path, tmp_path) as d:
        d.wait_for("READY=1")
        assert wait_for(lambda: devices_ready(sim.config_path), 20)
        assert centre.wait_for(lambda: online_count(centre) >= 1, 20)
        for name, args in (("manual_ticket", {}), ("open_gate", {"zone": "hall"}),
                           ("register_guest", {"zone": "office"})):
            reply = centre.command(ROOT, name, json.dumps({"args": args}).encode())
            assert (reply["ok"], reply["reason"]) == (False, "unsigned"), (name, reply)
        reply = centre.command(ROOT, "lists_import", json.dumps(
            {"args": {"snapshot": {"list": "staff_badges", "version": 1, "entries": [],
                                   "checksum": "0" * 64}}}).encode())
        assert (reply["ok"], reply["reason"]) == (False, "local_only")
        assert centre.command(ROOT, "call_next", b'{"args": {"counter": "1"}}')["ok"] is True
        def refusals() -> dict[str, int]:  # summed: a burst is one event and a summary
            out: dict[str, int] = {}
            for m in centre.events():
                if m.body["type"] == "security":
                    out[m.body["data"]["reason"]] = out.get(m.body["data"]["reason"], 0) + \
                        int(m.body["data"]["count"])
            return out
        assert centre.wait_for(lambda: refusals() == {"local_only": 1, "unsigned": 3}, 30)
        assert not [m for m in centre.events() if m.body["type"] in ("gate.command", "decision")]
        assert sim.hall.presses(Button.OPEN) == 0 and sim.office.presses(Button.OPEN) == 0

        reply = centre.command(ROOT, "manual_ticket",
                               sign_command(key, "manual_ticket", {"service": "social"}))
        assert reply["ok"] is True and reply["decision"]["open_gate"] is True
        assert wait_for(lambda: sim.hall.presses(Button.OPEN) == 1, 10)
        reply = centre.command(ROOT, "open_gate", sign_command(key, "open_gate",
                                                               {"zone": "office"}))
        assert reply["ok"] is True and reply["gates"] == ["office_gate"]
        assert wait_for(lambda: sim.office.presses(Button.OPEN) == 1, 10)
        assert d.terminate() == 0


def test_visitor_buttons_on_the_hall_gate(sim: SimBooth, tmp_path: Path) -> None:
    """The push-buttons wired to the hall gate's relay board: escalation opens one case however
    often it is pressed while unanswered; assist gives the next tap priority help."""
    cfg = str(sim.config_path)

    def queue() -> dict[str, Any]:
        status: dict[str, Any] = json.loads(gated("status", "-c", cfg).stdout)["status"]
        return status["queue"]  # type: ignore[no-any-return]

    with DaemonProcess(sim.config_path, tmp_path) as d:
        def logged(event: str) -> int:
            return d.log_path.read_text(errors="replace").count(event)

        d.wait_for("READY=1")
        wait_for(lambda: devices_ready(sim.config_path), 20)
        sim.hall.press(ButtonKind.ESCALATION)
        wait_for(lambda: queue()["open_escalations"], 10, "an escalation from the button")
        for _ in range(3):  # an impatient visitor, past the rearm time each time
            time.sleep(1.1)
            sim.hall.press(ButtonKind.ESCALATION)
        wait_for(lambda: logged("escalation_button_repeat") == 3, 10, "three repeats")
        (case,) = queue()["open_escalations"]
        assert case["number"] is None and queue()["open_assists"] == []
        assert queue()["armed"] == {}
        sim.hall.press(ButtonKind.ASSIST)
        wait_for(lambda: logged("button_pressed") == 5, 10, "the assist press")
        assert 0 < queue()["armed"]["assist"] <= 60  # the guard sees the press was taken
        sim.reader.present(ADULT)  # 46 years old: priority only because of the button
        wait_for(lambda: queue()["open_assists"], 10, "an assist request")
        sim.reader.remove()
        assert queue()["armed"] == {}  # the tap took it
        assert d.terminate() == 0
    db = sqlite3.connect(sim.directory / "state" / "gated.db")
    bodies = [json.loads(r[0]) for r in db.execute(
        "SELECT body FROM events WHERE type IN ('escalation', 'assist.request') ORDER BY seq")]
    db.close()
    assert [(e["type"], e["data"].get("source"), e["data"].get("reason")) for e in bodies] == [
        ("escalation", "button", None), ("assist.request", None, "assist")]
