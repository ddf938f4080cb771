"""Bad input over MQTT against a real ``gated run`` on a real mosquitto: empty, deep and huge
payloads are refused before anything runs, every rejected list message is acknowledged with a
reason, and a flood of refusals costs the outbox a few events, not one per refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivers.sim.barrier_arm import Button
from gated.booth.lists import entries_checksum
from tests.support.booth import ROOT, booth_on_broker, devices_ready
from tests.support.daemon import DaemonProcess
from tests.support.mosquitto import env_has_mosquitto
from tests.support.polling import holds_within, wait_for
from tests.support.uplink_harness import Centre

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150),
              pytest.mark.skipif(not env_has_mosquitto(), reason="mosquitto not installed")]

DEEP = b'{"args": ' + b"[" * 8000 + b"]" * 8000 + b"}"


def _events(centre: Centre, etype: str) -> list[dict[str, object]]:
    return [m.body["data"] for m in centre.events() if m.body["type"] == etype]


def _sync_acks(centre: Centre, kind: str) -> list[dict[str, object]]:
    return [m.body for m in centre.messages if m.topic == f"{ROOT}/sync_ack/{kind}"]


def test_bad_payloads_are_refused_and_nothing_runs(tmp_path: Path) -> None:
    with booth_on_broker(tmp_path, "sync_chunk_timeout_s = 1.0\n") as (sim, centre), \
            DaemonProcess(sim.config_path, tmp_path) as d:
        d.wait_for("READY=1")
        assert wait_for(lambda: devices_ready(sim.config_path), 20)
        for name in ("escalate", "assist", "flag_priority", "print_test_ticket", "sync_lists",
                     "call_next", "get_status"):
            for payload in (b"", b"   ", b"[]", b'"x"', DEEP):
                reply = centre.command(ROOT, name, payload)
                assert reply["ok"] is False and reply["reason"] == "malformed", (name, reply)
        huge = json.dumps({"args": {"counter": "1"}}).encode()[:-2] + b', "n": 1' + \
            b"0" * 400 + b"}}"
        assert centre.command(ROOT, "call_next", huge)["reason"] == "malformed"
        assert centre.command(ROOT, "echo", b"{}")["reason"] == "unknown_command"

        # lists: every rejection gets a sync_ack with a reason
        def sync(kind: str, payload: bytes) -> None:
            centre.publish(f"{ROOT}/sync/{kind}", payload)
        sync("alerts", b"[" * 8000 + b"]" * 8000)
        sync("alerts", b'{"op": "snapshot", "version": 1' + b"0" * 400 + b', "entries": [], '
             b'"checksum": "0"}')
        sync("alerts", b"")
        entries = [{"key": f"k{i}", "level": "watch"} for i in range(20)]
        chunk = {"op": "snapshot", "list": "staff_badges", "version": 2, "chunks": 2,
                 "chunk": 0, "checksum": entries_checksum(entries), "entries": entries[:10]}
        sync("staff_badges", json.dumps(chunk).encode())  # chunk 1 never comes
        assert centre.wait_for(lambda: len(_sync_acks(centre, "alerts")) >= 3, 20)
        reasons = [a["reason"] for a in _sync_acks(centre, "alerts")]
        assert reasons == ["too_deep", "number_out_of_range", "malformed"], reasons
        assert centre.wait_for(lambda: _sync_acks(centre, "staff_badges"), 20)
        (late,) = _sync_acks(centre, "staff_badges")
        assert late["ok"] is False and late["reason"] == "incomplete" and late["version"] == 2

        # nothing ran: no escalation, no assist, no ticket printed, no list applied
        assert holds_within(lambda: not _events(centre, "escalation"), 2)
        assert not _events(centre, "assist.request") and not sim.printer.tickets
        assert not [e for e in _events(centre, "list.sync") if e.get("ok")]
        log = d.log_path.read_text(errors="replace")
        assert "Traceback" not in log and "RecursionError" not in log
        assert "internal_error" not in log and "OverflowError" not in log
        assert d.terminate() == 0


def test_a_flood_of_refused_commands_is_summed_not_stored_one_by_one(tmp_path: Path) -> None:
    with booth_on_broker(tmp_path) as (sim, centre), \
            DaemonProcess(sim.config_path, tmp_path) as d:
        d.wait_for("READY=1")
        assert centre.wait_for(lambda: any(m.topic == f"{ROOT}/status" for m in
                                           centre.messages), 20)
        n = 300
        for _ in range(n):
            centre.publish(f"{ROOT}/cmd/open_gate", b'{"args": {"zone": "hall"}}')
        replies = lambda: [m for m in centre.messages if m.topic.startswith(f"{ROOT}/reply/")]  # noqa: E731
        assert centre.wait_for(lambda: len(replies()) == n, 60)
        refused = [m.body for m in replies() if m.body.get("reason") == "unsigned"]
        # the audit window (10 s) ends; its summary follows the first, immediate event
        assert centre.wait_for(lambda: sum(int(e["count"]) for e in _events(
            centre, "security") if e["reason"] == "unsigned") == len(refused), 30)
        security = _events(centre, "security")
        assert len(security) <= 3, security  # not one per refusal
        assert sim.hall.presses(Button.OPEN) == 0
        assert d.terminate() == 0
