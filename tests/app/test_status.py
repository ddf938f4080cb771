"""The local ``gated status`` and the retained MQTT ``status`` are the same document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.booth import ROOT, booth_on_broker, devices_ready, gated
from tests.support.daemon import DaemonProcess
from tests.support.mosquitto import env_has_mosquitto
from tests.support.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90),
              pytest.mark.skipif(not env_has_mosquitto(), reason="mosquitto not installed")]


def test_local_and_mqtt_status_carry_the_same_fields(tmp_path: Path) -> None:
    with booth_on_broker(tmp_path, "status_interval_s = 1.0\n") as (sim, centre), \
            DaemonProcess(sim.config_path, tmp_path) as d:
        d.wait_for("READY=1")
        wait_for(lambda: devices_ready(sim.config_path), 20, "devices ready")
        topic = f"{ROOT}/status"
        n = len(centre.messages)
        assert centre.wait_for(lambda: any(
            m.topic == topic and m.body.get("online") and all(
                s["state"] == "ready" for s in m.body["devices"].values())
            for m in centre.messages[n:]), 20)
        remote = next(m.body for m in reversed(centre.messages) if m.topic == topic)
        out = gated("status", "-c", str(sim.config_path))
        assert out.returncode == 0, out.stderr
        local = json.loads(out.stdout)["status"]
        # the retained one also says which connection of this session it came on
        assert set(local) | {"connection"} == set(remote)
        assert remote["session"] == local["session"] >= 1 and remote["connection"] >= 1
        for part in ("outbox", "queue", "devices", "lists", "uplink"):
            assert set(local[part]) == set(remote[part]), part
        assert local["online"] is True and local["state"] == remote["state"] == "online"
        assert local["problems"] == [] and local["ts"].endswith("Z")
        assert d.terminate() == 0


def test_a_night_of_unanswered_cases_keeps_the_status_small_and_the_link_up(
        tmp_path: Path) -> None:
    """Open cases pile up when nobody answers them; the status lists the oldest few and counts
    the rest. It used to list all of them, grew past the broker's packet limit, and every
    status publish then cost the booth its connection."""
    from gated.control import call

    with booth_on_broker(tmp_path, "status_interval_s = 1.0\n") as (sim, centre), \
            DaemonProcess(sim.config_path, tmp_path) as d:
        d.wait_for("READY=1")
        state = sim.directory / "state"
        for _ in range(600):  # 600 escalations: ~100 KB listed, past mosquitto's 64 KiB here
            assert call(state, "escalate", {"source": "guard"})["ok"]
        topic = f"{ROOT}/status"
        n = len(centre.messages)
        assert centre.wait_for(lambda: any(
            m.topic == topic and m.body.get("queue", {}).get("open_counts", {}).get(
                "escalation") == 600 for m in centre.messages[n:]), 20)
        status = next(m.body for m in reversed(centre.messages) if m.topic == topic)
        assert len(status["queue"]["open_escalations"]) == 30
        assert len(json.dumps(status)) < 64 * 1024
        up = call(state, "get_status")["status"]["uplink"]
        assert up["connects"] == 1, up  # never dropped for an oversized packet
        assert d.terminate() == 0
