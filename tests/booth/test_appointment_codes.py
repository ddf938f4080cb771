"""Appointment codes at a real booth: cameras on image files of rendered QR codes. A valid
signed code opens the office area once; the same code shown again (a shared screenshot) and a
forged one are alarms for the guard, and the hall still admits."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import qrcode

from drivers.sim.barrier_arm import Button
from gated.app.daemon import Daemon
from gated.app.simulate import SimBooth
from gated.config import load_config
from gated.policy import sign_code
from tests.support.polling import wait_for

pytestmark = pytest.mark.timeout(90)
KEY = bytes(range(32))


def _png(path: Path, text: str) -> Path:
    qrcode.make(text, border=4, box_size=8).save(path)
    return path


def _events(d: Daemon, etype: str) -> list[dict[str, Any]]:
    assert d.store is not None
    conn = d.store.reader()
    try:
        rows = conn.execute("SELECT body FROM events WHERE type = ?", (etype,)).fetchall()
    finally:
        conn.close()
    return [json.loads(r[0])["data"] for r in rows]


def test_a_code_checks_in_once_and_forgeries_are_refused(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    start, end = now - timedelta(minutes=10), now + timedelta(minutes=20)
    if end.date() != now.date():  # a window across midnight cannot be booked
        start, end = now.replace(hour=0, minute=0), now.replace(hour=23, minute=59)
    fields = {"ref": "R-7", "site": "demo-town", "day": now.date().isoformat(),
              "start": start.strftime("%H:%M"), "end": end.strftime("%H:%M"),
              "zone": "office", "svc": "social"}
    good = sign_code(fields, hmac_key=KEY)
    forged = sign_code({**fields, "ref": "R-8"}, hmac_key=b"guessed" * 5)
    with SimBooth(tmp_path / "sim", mqtt="off") as sim:
        key = tmp_path / "appointments.key"
        key.write_text(KEY.hex())
        key.chmod(0o600)
        cams = "".join(
            f'\n[devices.{name}]\ntype = "camera_qr"\nfps = 5.0\n'
            f'source = "{_png(tmp_path / f"{name}.png", t)}"\n'
            for name, t in (("cam1", good), ("cam2", good), ("cam3", forged)))
        text = sim.config_path.read_text(encoding="utf-8")
        sim.config_path.write_text(text + f'\n[appointments]\nhmac_key_file = "{key}"\n' + cams,
                                   encoding="utf-8")
        d = Daemon(load_config(sim.config_path), config_path=sim.config_path)
        d.start()
        try:
            decisions = wait_for(lambda: len(_events(d, "decision")) >= 3
                                 and _events(d, "decision"), 20, "three decisions")
            by_reason = sorted(e["reason"] for e in decisions)
            assert by_reason == ["appointment", "appointment_already_checked_in",
                                 "appointment_forged"], by_reason
            (checked,) = [e for e in decisions if e["reason"] == "appointment"]
            assert (checked["zone"], checked["service"]) == ("office", "social")
            wait_for(lambda: sim.office.presses(Button.OPEN) == 1, 10, "the office opens once")
            wait_for(lambda: sim.hall.presses(Button.OPEN) >= 1, 10, "the hall admits the rest")
            gates = [e["device"] for e in _events(d, "gate.command")]
            assert sorted(gates) == ["hall_gate", "hall_gate", "office_gate"]
            alarms = [a for a in _events(d, "alarm") if a["kind"] == "see_guard"]
            assert sorted(a["alerts"][0] for a in alarms) == ["appointment_code"] * 2
        finally:
            d.stop()
