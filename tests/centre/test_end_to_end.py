"""A real ``gated run`` (simulated devices) on a real mosquitto, a real ``gated centre ingest``
into a real PostgreSQL: the county's views are built from what the booth really emits, and
the desk's commands (``gated centre ack|called-back|close|publish-list``) reach the booth and
come back as its events."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gated.booth.lists import entries_checksum
from tests.centre.support import ROOT, IngestProcess, centre_config, scalar, wait_until
from tests.support.booth import booth_with_broker, devices_ready, gated
from tests.support.daemon import DaemonProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SITE, BOOTH = "demo-town", "sim-booth"


def centre(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gated.app.cli", "centre", "-c", str(cfg),
                           *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def ctl(cfg: Path, name: str, *params: str) -> dict[str, Any]:
    out = gated("ctl", "-c", str(cfg), name, *params)
    reply: dict[str, Any] = json.loads(out.stdout)
    assert reply.get("ok"), reply
    return reply


def test_views_and_desk_against_a_real_booth(tmp_path: Path, pg_server: Any, centre_db: str,
                                             db: Any) -> None:
    # the desk's case commands are signed: the booth and the centre share the command key
    key = tmp_path / "command.key"
    key.write_text(bytes(range(32)).hex() + "\n")
    key.chmod(0o600)
    with booth_with_broker(tmp_path, f'command_key_file = "{key}"\n') as (sim, broker), \
            DaemonProcess(sim.config_path, tmp_path) as d:
        cfg = centre_config(tmp_path, broker, centre_db, command_key=key)
        with IngestProcess(cfg, "w1", tmp_path) as w:
            d.wait_for("READY=1")
            assert wait_until(lambda: devices_ready(sim.config_path), 20)
            booth = sim.config_path
            ctl(booth, "manual_ticket", "service=social", "priority=elderly")
            ctl(booth, "manual_ticket", "service=social")
            ctl(booth, "manual_ticket", "service=general")
            first = ctl(booth, "call_next", "counter=1", "services=[\"social\"]")["ticket"]
            ctl(booth, "served", "counter=1")
            second = ctl(booth, "call_next", "counter=1", "services=[\"social\"]")["ticket"]
            ctl(booth, "no_show", "counter=1")
            third = ctl(booth, "call_next", "counter=2", "services=[\"general\"]")["ticket"]
            ctl(booth, "served", "counter=2")
            bad = ctl(booth, "rate", f"ticket={first['ticket_id']}", "level=very_dissatisfied")
            ctl(booth, "rate", f"ticket={third['ticket_id']}", "level=satisfied")
            esc = ctl(booth, "escalate", f"number={second['number']}")

            assert wait_until(lambda: scalar(db, "SELECT count(*) FROM cases") == 2, 30)
            assert first["priority"] is True  # the elderly visitor's ticket is called first
            hall = db.execute("SELECT tickets, served, no_shows, priority_share FROM "
                              "daily_hall WHERE site = %s", (SITE,)).fetchone()
            assert hall[:3] == (3, 2, 1) and float(hall[3]) == pytest.approx(1 / 3, abs=1e-3)
            social = db.execute("SELECT tickets, served, no_shows, avg_wait_min IS NOT NULL "
                                "FROM daily_service WHERE service = 'social'").fetchone()
            assert social == (2, 1, 1, True)
            counters = dict(db.execute("SELECT counter, served FROM daily_counter").fetchall())
            assert counters == {"1": 1, "2": 1}
            rated = dict(db.execute("SELECT service, very_dissatisfied FROM ratings_by_service"
                                    ).fetchall())
            assert rated == {"social": 1, "general": 0}
            cases = {r[0]: r[1:] for r in db.execute(
                "SELECT kind, case_id, state, number, service FROM cases").fetchall()}
            assert cases["callback"] == (bad["case_id"], "open", first["number"], "social")
            assert cases["escalation"] == (esc["case_id"], "open", second["number"], "social")

            # the desk: the worklist, then answer both cases at the booth
            work = json.loads(centre(cfg, "cases", "--json").stdout)
            # both priority (the defaults), due the same day: the older case first
            assert [(i["kind"], i["list"], i["label"], i["overdue"]) for i in work] == [
                ("callback", "priority", "优先办", False),
                ("escalation", "priority", "优先办", False)]
            where = f"{SITE}/{BOOTH}"
            assert centre(cfg, "sort", where, bad["case_id"], "explain").returncode == 0
            for args in (("ack", where, esc["case_id"]),
                         ("close", where, esc["case_id"], "--outcome", "办结: 材料已补齐"),
                         ("ack", where, bad["case_id"], "--by", "desk-3"),
                         ("called-back", where, bad["case_id"], "--note", "已回访")):
                out = centre(cfg, *args)
                assert out.returncode == 0, (args, out.stdout, out.stderr)
                assert json.loads(out.stdout)["ok"] is True
            again = centre(cfg, "ack", where, esc["case_id"])  # the booth refuses a second ack
            assert again.returncode == 1 and "already_closed" in again.stdout
            assert wait_until(lambda: dict(db.execute(
                "SELECT kind, state FROM cases").fetchall()) == {
                "escalation": "closed", "callback": "called_back"}, 30)
            times = db.execute("SELECT kind, to_ack_s >= 0, to_close_s >= 0, "
                               "to_call_back_s >= 0, sorted_into, outcome, handled_by FROM "
                               "case_times ORDER BY kind").fetchall()
            assert times == [("callback", True, None, True, "explain", None, "desk-3"),
                             ("escalation", True, True, None, None, "办结: 材料已补齐",
                              "centre")]
            work = json.loads(centre(cfg, "cases", "--json").stdout)
            assert [(i["kind"], i["list"], i["state"]) for i in work] == [
                ("callback", "explain", "called_back")]
            assert scalar(db, "SELECT count(*) FROM desk_actions WHERE ok") == 4

            # a list snapshot from a file, to this booth; the booth acknowledges it
            entries = [{"uid": f"04A1B2{i:02X}", "zones": ["office"], "label": "staff"}
                       for i in range(3)]
            snap = tmp_path / "badges.json"
            snap.write_text(json.dumps({"list": "staff_badges", "version": 5,
                                        "entries": entries}))
            out = centre(cfg, "publish-list", str(snap), "--site", SITE, "--booth", BOOTH)
            assert out.returncode == 0, out.stderr
            (ack,) = json.loads(out.stdout)["acks"]
            assert ack["ok"] is True and ack["version"] == 5
            wrong = tmp_path / "wrong.json"
            wrong.write_text(json.dumps({"list": "staff_badges", "version": 6, "entries":
                                         entries, "checksum": entries_checksum(entries[:1])}))
            out = centre(cfg, "publish-list", str(wrong), "--site", SITE, "--booth", BOOTH)
            assert out.returncode == 1 and "bad_checksum" in out.stderr

            # the fleet's health, from the booth's retained status
            health = "SELECT online, state, devices_not_ready FROM fleet_health"
            assert wait_until(lambda: db.execute(health).fetchone() == (True, "online", 0),
                              30), (db.execute(health).fetchone(), scalar(
                                  db, "SELECT body->'devices' FROM booth_status"))
            # Every seq the centre has no event of is still at the booth: the test broker's
            # ACL refuses gate.inputs (PUBACK 0x87), the booth retries it and then keeps it
            # as a dead letter, whose event explains the gap.
            booth_db = sim.directory / "state" / "gated.db"

            def unaccounted() -> dict[int, str]:
                missing = {s for lo, hi in db.execute(
                    "SELECT first_seq, last_seq FROM booth_gaps WHERE NOT explained")
                    for s in range(lo, hi + 1)}
                with contextlib.closing(sqlite3.connect(f"file:{booth_db}?mode=ro",
                                                        uri=True)) as lite:
                    at_booth = dict(lite.execute(
                        "SELECT seq, type FROM events UNION SELECT seq, type FROM dead_letter"))
                return {s: at_booth.get(s, "lost") for s in missing
                        if at_booth.get(s) != "gate.inputs"}
            assert wait_until(lambda: not unaccounted(), 30), unaccounted()
            shown = json.loads(centre(cfg, "show", "fleet_health", "--json").stdout)
            assert [(r["site"], r["booth"]) for r in shown] == [(SITE, BOOTH)]
            assert scalar(db, "SELECT count(*) FROM quarantine") == 0
            assert d.terminate() == 0
            assert wait_until(lambda: db.execute(
                "SELECT online, offline_reason FROM fleet_health").fetchone()
                == (False, "stopped"), 30)
            assert w.terminate() == 0
