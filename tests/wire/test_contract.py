"""The AsyncAPI document against the code it describes, ``gated.wire.contract``'s checks, and
proof that the suite-wide checks (tests/support/contract_check.py) catch a wrong payload."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gated.booth import ListKind
from gated.booth.lists import AlertLevel, report_refused
from gated.commands import CommandRegistry, register_commands
from gated.config import RatingLevel, ZoneMode
from gated.policy.credentials import CardType, CardValidity, CredentialKind, Gender
from gated.policy.decide import AlertKind, Outcome, PriorityReason, VisitorClass
from gated.state import EventPriority, EventType, SessionSource
from gated.uplink.connection import RefusalKind
from gated.wire import contract
from tests.support import contract_check
from tests.support.mosquitto import CENTRE_USER, Broker, env_has_mosquitto
from tests.support.polling import holds_within
from tests.support.state_rig import StateRig
from tests.test_readme import _alarm_kinds

S = contract.schemas()


def _enum(schema: dict[str, Any]) -> set[str]:
    return set(schema["enum"])


def test_every_schema_is_valid_json_schema_and_every_ref_resolves() -> None:
    for name, schema in S.items():
        Draft202012Validator.check_schema(schema)
        contract.problems(name, {})  # resolves every $ref it reaches
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(contract.document())
    for ref in refs:
        node: Any = contract.document()
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]  # KeyError names a dangling reference
    assert len(refs) > 50


def test_every_event_type_has_its_schema_and_no_other() -> None:
    assert set(contract.event_types()) == {str(t) for t in EventType}
    assert {n.removeprefix("event.") for n in S if n.startswith("event.")} == \
        {str(t) for t in EventType}
    assert _enum(S["Priority"]) == {p.name.lower() for p in EventPriority}


def test_every_command_is_in_the_contract_with_its_flags() -> None:
    reg = CommandRegistry()
    register_commands(reg, object(), loop=object(), booth=object(),  # type: ignore[arg-type]
                      lists=object())  # type: ignore[arg-type]
    table = contract.commands()
    assert set(table) == set(reg.help())
    for name, spec in table.items():
        cmd = reg._commands[name]
        assert bool(spec.get("signed")) == cmd.signed, name
        assert bool(spec.get("local_only")) == cmd.local_only, name
        assert spec["reply"] in S and spec.get("args", "Command") in S, name


@pytest.mark.parametrize(("schema", "python"), [
    (S["AlertKind"], AlertKind), (S["Visitor"], VisitorClass),
    (S["PriorityReason"], PriorityReason),
    (S["Decision"]["properties"]["outcome"], Outcome),
    (S["event.credential"]["properties"]["kind"], CredentialKind),
    (S["event.credential"]["properties"]["card_type"], CardType),
    (S["event.credential"]["properties"]["gender"], Gender),
    (S["event.credential"]["properties"]["validity"], CardValidity),
    (S["event.rating"]["properties"]["level"], RatingLevel),
    (S["event.command"]["properties"]["mode"], ZoneMode),
    (S["event.uplink.refused"]["properties"]["reason"], RefusalKind),
    (S["event.booth.started"]["properties"]["session_from"], SessionSource),
    (S["ListName"], ListKind),
])
def test_enums_match_the_code(schema: dict[str, Any], python: Any) -> None:
    assert _enum(schema) == {str(v) for v in python}


def test_alarm_kinds_match_the_code() -> None:
    assert _enum(S["event.alarm"]["properties"]["kind"]) == _alarm_kinds()
    assert {str(a) for a in AlertLevel} == {"watch", "revoked", "banned_notice"}


GOOD = {"id": "01KB0Z5T3M8J6X2Y4Q9W7E5R1A", "seq": 7, "ts": "2026-11-22T02:03:04.567Z",
        "clock_ok": True, "type": "counter", "schema": 1, "site": "s1", "booth": "east-gate",
        "session": 3, "priority": "normal", "data": {"counter": "3", "state": "paused"}}


def test_event_problems_pass_a_good_event_and_name_what_is_wrong() -> None:
    assert contract.event_problems(GOOD) == []
    assert contract.event_problems([GOOD]) == ["an event is a JSON object, not array"]
    bad = {**GOOD, "seq": 0, "data": {"counter": 3, "state": "paused", "extra": 1}}
    found = contract.event_problems(bad)
    assert found == ["seq: fails minimum 1"]  # the envelope first: data is not looked at
    found = contract.event_problems({**GOOD, "data": {"counter": 3, "state": "gone", "x": 1}})
    assert set(found) == {"data: Additional properties are not allowed ('x' was unexpected)",
                          "data.counter: must be string, not number",
                          "data.state: must be one of 'paused', 'open'"}
    assert contract.event_problems({**GOOD, "type": "made.up"})[0] == \
        "type: 'made.up' is not an event type of this contract"
    no_session = {k: v for k, v in GOOD.items() if k != "session"}
    assert contract.event_problems(no_session) == ["(top): 'session' is a required property"]


def test_problems_never_repeat_the_value_found() -> None:
    """A payload can be wrong because it carries what it must not (a full ID number): the
    problem says where and what kind, never the value."""
    leak = "11010519491231002X"
    cred = {"device": "reader", "kind": "id_card", "pseudonym": "p" * 64,
            "card_type": "resident", "age_band": "70-79", "gender": leak, "validity": "valid",
            "masked_name": ["张三"], "masked_number": 11010519491231002, "leak": leak}
    found = contract.event_problems({**GOOD, "type": "credential", "data": cred})
    assert len(found) == 4 and not any(leak in p or "张三" in p for p in found), found
    assert not any(leak[:17] in p for p in found)


def test_status_will_and_reply_checks() -> None:
    will = {"online": False, "state": "offline", "reason": "lost", "site": "s1", "booth": "b",
            "version": "0.1.0", "session": 4, "connection": 2,
            "connected_at": "2026-11-22T02:03:04.567Z", "keepalive_s": 30}
    assert contract.status_problems(will) == []
    assert contract.status_problems({**will, "ts": will["connected_at"]}) == [
        "(top): Additional properties are not allowed ('ts' was unexpected)"]
    assert contract.reply_problems("open_gate", {"command": "open_gate", "ok": True,
                                                 "gates": ["g1"]}) == []
    assert contract.reply_problems("open_gate", {"command": "open_gate", "ok": True}) == [
        "(top): 'gates' is a required property"]
    assert contract.reply_problems("no_such", {"ok": False, "reason": "unknown_command",
                                               "message": "no command 'no_such'"}) == []
    assert contract.reply_problems("no_such", {"ok": True})[0].startswith("command 'no_such'")
    assert contract.reply_problems("help", {"command": "recall", "ok": False,
                                            "reason": "x"})[0].startswith("command:")


def test_command_and_list_checks() -> None:
    from gated.commands.signing import sign_command

    signed = json.loads(sign_command(b"k" * 32, "set_zone_mode", {"zone": "office",
                                                                  "mode": "locked"}))
    assert contract.command_problems("set_zone_mode", signed) == []
    assert contract.command_problems("set_zone_mode", {"args": {"zone": "office"}}) == [
        "(top): 'ts' is a required property", "(top): 'nonce' is a required property",
        "(top): 'sig' is a required property"]
    vectors = json.loads((Path(__file__).resolve().parents[2] / "docs"
                          / "signing-vectors.json").read_text(encoding="utf-8"))
    for v in vectors["commands"]:
        if v["form"] == "ms":
            assert contract.command_problems(v["name"], v["payload"]) == [], v["title"]
    snap = vectors["list_checksums"][0]
    doc = {"op": "snapshot", "list": snap["list"], "version": 3, "entries": snap["entries"],
           "checksum": snap["checksum"], "chunk": 0, "chunks": 1}
    assert contract.list_message_problems(doc) == []
    assert contract.list_message_problems({**doc, "chunk": -1}) == ["chunk: fails minimum 0"]


# ---------------------------------------------------------------------------- the suite hook


def test_the_suite_checks_catch_a_wrong_event_from_gated_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A payload the booth's own code emits wrong is caught where it is stored; one a test
    emits itself is counted as made up, not checked."""
    fresh = contract_check.Recorder()
    monkeypatch.setattr(contract_check, "ACTIVE", fresh)
    with StateRig(tmp_path) as rig:
        rig.run(lambda b: report_refused(b, kind="alerts", version=2, reason="Not A Slug!",
                                         source="mqtt"))
        rig.run(lambda b: report_refused(b, kind="alerts", version=3, reason="bad_checksum",
                                         source="mqtt"))
        rig.run(lambda b: b.emit(EventType.TICKET_ISSUED, {"i": 1}))
    assert fresh.checked["event"] == 2 and fresh.fabricated["event"] == 1
    (v,) = fresh.violations.values()
    assert (v.kind, v.name) == ("event", "list.sync") and "gated/booth/lists.py" in v.where
    assert v.problems == ("data.reason: fails pattern '^[a-z][a-z0-9_]*$'",)
    assert "list.sync" in fresh.report()


@pytest.mark.integration
@pytest.mark.skipif(not env_has_mosquitto(), reason="mosquitto not installed")
def test_the_broker_tap_checks_what_other_processes_publish(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = contract_check.Recorder()
    monkeypatch.setattr(contract_check, "ACTIVE", fresh)
    broker = Broker(tmp_path / "broker").start()
    try:
        assert broker.tap is not None
        root = "gated/v1/s1/east-gate"
        bad = {"online": True, "state": "online", "site": "s1", "booth": "east-gate"}
        good = {"online": False, "state": "offline", "reason": "stopped", "site": "s1",
                "booth": "east-gate", "version": "0.1.0", "session": 9, "connection": 1,
                "ts": "2026-11-22T02:03:04.567Z"}
        script = ("import sys, paho.mqtt.client as m\n"
                  "c = m.Client(m.CallbackAPIVersion.VERSION2, protocol=m.MQTTv5)\n"
                  f"c.username_pw_set({CENTRE_USER!r}, {broker.users[CENTRE_USER]!r})\n"
                  f"c.connect('127.0.0.1', {broker.port}); c.loop_start()\n"
                  "for t, p in zip(sys.argv[1::2], sys.argv[2::2]):\n"
                  "    c.publish(t, p, qos=1).wait_for_publish(5)\n"
                  "c.disconnect(); c.loop_stop()\n")
        subprocess.run([sys.executable, "-c", script, f"{root}/status", json.dumps(bad),
                        f"{root}/sync_ack/alerts", json.dumps({"list": "alerts", "ok": True}),
                        f"{root}/status", json.dumps(good), f"{root}/cmd/help", "{}"],
                       check=True, timeout=30)
        assert holds_within(lambda: fresh.checked["status"] == 2, 10), fresh.summary()
        kinds = sorted((v.kind, v.name) for v in fresh.violations.values())
        assert kinds == [("status", "status"), ("sync_ack", "alerts")], fresh.report()
        assert fresh.checked["sync_ack"] == 1  # the command (down) is not the booth's
    finally:
        broker.stop()
