"""Commands and list sync over MQTT against a real mosquitto, the real CommandRegistry and
the real Lists: every command gets a reply; a bad list is rejected whole."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gated.booth.lists import Lists, delta_checksum, entries_checksum
from gated.commands.registry import CommandRegistry, sign_command
from gated.uplink.service import Uplink
from tests.support.mosquitto import Broker, env_has_mosquitto
from tests.support.polling import holds_within
from tests.support.uplink_harness import BOOTH, BOOTH_PW, SITE, Booth, Centre, booth_config

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not env_has_mosquitto(), reason="mosquitto not installed")]

ROOT = f"gated/v1/{SITE}/{BOOTH}"
KEY = b"k" * 32


class Rig:
    def __init__(self, tmp: Path, protocol: str = "5") -> None:
        self.broker = Broker(tmp / "broker", users={"centre": "centre-pw", BOOTH: BOOTH_PW})
        self.broker.start()
        self.booth = Booth(tmp / "state", [Lists.ensure_schema, CommandRegistry.ensure_schema])
        self.lists = self.booth.loop.call(lambda b: Lists(b.conn)).result(10)
        self.registry = CommandRegistry()
        # as the daemon does: the registry's limit is the config's command_max_bytes
        self.registry.configure(key=KEY, max_skew_s=30.0, max_bytes=16 * 1024,
                                loop=self.booth.loop)
        self.opened: list[dict[str, Any]] = []
        self.registry.register("open_gate", lambda a: (self.opened.append(a), {"ok": True})[1],
                               signed=True, help="test gate")
        self.registry.register("echo", lambda a: {"ok": True, "args": a})
        cfg = booth_config(self.broker, tmp / "state", protocol=protocol,
                           command_max_bytes=16 * 1024)
        self.uplink = Uplink(cfg, self.booth.store, self.booth.loop, self.booth.outbox,
                             self.registry, None, self.lists)
        self.centre = Centre(self.broker, client_id=f"centre-rpc-{uuid.uuid4().hex[:8]}").start()
        self.uplink.start()
        assert holds_within(lambda: self.uplink.state()["connected"], 10)
        time.sleep(0.2)  # subscriptions granted

    def close(self) -> None:
        self.uplink.stop()
        self.centre.stop()
        self.booth.close()
        self.broker.stop()

    def command(self, name: str, payload: bytes, *, v5_reply: bool = True,
                timeout: float = 10) -> dict[str, Any]:
        return self.centre.command(ROOT, name, payload, v5_reply=v5_reply, timeout=timeout)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


@pytest.mark.timeout(60)
def test_every_command_gets_a_reply_with_the_right_refusal(rig: Rig) -> None:
    ok = rig.command("open_gate", sign_command(KEY, "open_gate", {"zone": "hall"}))
    assert ok["ok"] is True and ok["command"] == "open_gate"
    assert rig.opened == [{"zone": "hall"}]
    replayed_payload = sign_command(KEY, "open_gate", {"zone": "hall"}, nonce="n" * 16)
    assert rig.command("open_gate", replayed_payload)["ok"] is True
    cases = {
        "unsigned": ("open_gate", json.dumps({"args": {"zone": "hall"}}).encode()),
        "replayed": ("open_gate", replayed_payload),
        "stale": ("open_gate", sign_command(KEY, "open_gate", {"zone": "hall"},
                                            ts_ms=int((time.time() - 3600) * 1000))),
        "forged": ("open_gate", sign_command(b"x" * 32, "open_gate", {"zone": "hall"})),
        "malformed": ("echo", b"{not json"),
        "oversized": ("echo", json.dumps({"args": {"x": "y" * 20_000}}).encode()),
        "unknown": ("no_such_command", b"{}"),
    }
    reasons = {case: rig.command(name, payload) for case, (name, payload) in cases.items()}
    assert all(r["ok"] is False and r["reason"] for r in reasons.values()), reasons
    assert reasons["oversized"]["reason"] == "too_large"
    assert reasons["unknown"]["reason"] == "unknown_command"
    assert reasons["malformed"]["reason"] == "malformed"
    assert len({reasons[c]["reason"] for c in ("unsigned", "replayed", "stale")}) == 3
    assert rig.opened == [{"zone": "hall"}, {"zone": "hall"}]  # no refused one opened it
    assert rig.uplink.state()["commands_handled"] == 2 + len(cases)


@pytest.mark.timeout(60)
def test_v311_replies_on_the_reply_topic_with_the_correlation_field(tmp_path: Path) -> None:
    rig = Rig(tmp_path, protocol="3.1.1")
    try:
        body = json.dumps({"args": {"a": 1}, "correlation": "c-42"}).encode()
        reply = rig.command("echo", body, v5_reply=False)
        assert reply == {"command": "echo", "ok": True, "args": {"a": 1}, "correlation": "c-42"}
    finally:
        rig.close()


def _sync(rig: Rig, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    n = len(rig.centre.messages)
    rig.centre.publish(f"{ROOT}/sync/{kind}", json.dumps(doc).encode())
    ack = f"{ROOT}/sync_ack/{kind}"
    assert rig.centre.wait_for(lambda: any(m.topic == ack for m in rig.centre.messages[n:]), 15)
    return next(m.body for m in rig.centre.messages[n:] if m.topic == ack)


BADGES = [{"uid": "04A1B2C3", "zones": ["office"]}, {"uid": "04D4E5F6", "zones": ["hall"]}]


@pytest.mark.timeout(60)
def test_list_snapshot_delta_gap_and_bad_checksum(rig: Rig) -> None:
    snap = {"op": "snapshot", "list": "staff_badges", "version": 3, "entries": BADGES,
            "checksum": entries_checksum(BADGES)}
    assert _sync(rig, "staff_badges", snap) == {"list": "staff_badges", "version": 3,
                                                 "op": "snapshot", "ok": True}
    assert rig.lists.versions()["staff_badges"] == 3
    bad = dict(snap, version=4, entries=BADGES[:1])  # checksum of the old entries
    ack = _sync(rig, "staff_badges", bad)
    assert ack["ok"] is False and ack["reason"] == "bad_checksum" and ack["have_version"] == 3
    assert rig.lists.versions()["staff_badges"] == 3
    assert rig.booth.query("SELECT count(*) FROM list_entries")[0][0] == 2  # old list stays
    ups: list[dict[str, Any]] = [{"uid": "04AABBCC", "zones": ["office"]}]
    gap = {"op": "delta", "list": "staff_badges", "base_version": 5, "version": 6,
           "upserts": ups, "deletes": [], "checksum": delta_checksum(ups, [])}
    n = len(rig.centre.messages)
    assert _sync(rig, "staff_badges", gap)["reason"] == "version_gap"
    req = f"{ROOT}/sync_request/staff_badges"
    assert rig.centre.wait_for(lambda: any(m.topic == req for m in rig.centre.messages[n:]), 10)
    assert next(m.body for m in rig.centre.messages[n:] if m.topic == req) == {
        "list": "staff_badges", "have_version": 3, "reason": "version_gap", "want": "snapshot"}
    delta = dict(gap, base_version=3, version=4, deletes=["04D4E5F6"],
                 checksum=delta_checksum(ups, ["04D4E5F6"]))
    assert _sync(rig, "staff_badges", delta)["ok"] is True
    assert rig.lists.staff_badge("04AABBCC") is not None
    assert rig.lists.staff_badge("04D4E5F6") is None
    topic = f"{ROOT}/events/list.sync"
    assert rig.centre.wait_for(
        lambda: sum(m.topic == topic for m in rig.centre.messages) >= 4, 10)
    events = sorted((m.body for m in rig.centre.messages if m.topic == topic),
                    key=lambda b: b["seq"])
    events = [e["data"] for e in events]
    assert [(e["version"], e["ok"]) for e in events] == [(3, True), (4, False), (6, False),
                                                         (4, True)]


@pytest.mark.timeout(60)
def test_chunked_snapshot_on_the_site_topic(rig: Rig) -> None:
    entries = [{"key": f"k{i}", "level": "watch"} for i in range(30)]
    base = {"op": "snapshot", "list": "alerts", "version": 1, "chunks": 3,
            "checksum": entries_checksum(entries)}
    for i in range(3):
        chunk = dict(base, chunk=i, entries=entries[i * 10:(i + 1) * 10])
        rig.centre.publish(f"gated/v1/{SITE}/_site/sync/alerts", json.dumps(chunk).encode())
    ack = f"{ROOT}/sync_ack/alerts"
    assert rig.centre.wait_for(lambda: any(m.topic == ack for m in rig.centre.messages), 15)
    assert next(m.body for m in rig.centre.messages if m.topic == ack)["ok"] is True
    assert rig.lists.versions()["alerts"] == 1


def test_sync_lists_asks_the_centre_for_snapshots(rig: Rig) -> None:
    n = len(rig.centre.messages)
    assert rig.uplink.request_sync(["alerts", "appointments"])
    topics = {f"{ROOT}/sync_request/alerts", f"{ROOT}/sync_request/appointments"}
    assert rig.centre.wait_for(
        lambda: topics <= {m.topic for m in rig.centre.messages[n:]}, 10)
    body = next(m.body for m in rig.centre.messages[n:] if m.topic.endswith("/alerts"))
    assert body == {"list": "alerts", "have_version": 0, "reason": "requested",
                    "want": "snapshot"}
    rig.broker.stop()
    assert holds_within(lambda: not rig.uplink.state()["connected"], 10)
    assert rig.uplink.request_sync(["alerts"]) is False


@pytest.mark.timeout(60)
def test_commands_and_lists_arrive_after_the_broker_forgot_every_session(rig: Rig) -> None:
    """The booth subscribes again on every connect: a broker that comes back without its
    sessions (rebuilt, replaced) still reaches the booth's command and list topics."""
    assert rig.command("echo", b'{"args": {"n": 1}}')["ok"] is True
    before = rig.uplink.state()["connects"]
    rig.broker.restart(forget_sessions=True)
    assert holds_within(lambda: rig.uplink.state()["connects"] > before
                        and rig.uplink.state()["connected"], 15)
    assert holds_within(lambda: getattr(rig.centre, "_subscribed", False), 10)
    time.sleep(0.3)  # both sides' new subscriptions granted
    reply = rig.command("echo", b'{"args": {"n": 2}}')
    assert reply["ok"] is True and reply["args"] == {"n": 2}
    snap = {"op": "snapshot", "list": "staff_badges", "version": 1, "entries": BADGES,
            "checksum": entries_checksum(BADGES)}
    assert _sync(rig, "staff_badges", snap)["ok"] is True
    assert rig.lists.versions()["staff_badges"] == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("asked", ["centre/replies/r1", f"gated/v1/{SITE}/west-gate/reply/r1",
                                   f"{ROOT}/cmd/open_gate", f"{ROOT}/status"])
def test_a_response_topic_outside_the_booths_reply_tree_is_refused_on_its_own(
        rig: Rig, asked: str) -> None:
    """Under the recommended ACL the booth could not publish there: the reply would vanish.
    The command is not run; the refusal goes to the booth's own reply topic with the
    correlation data, and a security event says so."""
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = asked
    props.CorrelationData = b"corr-77"
    n = len(rig.centre.messages)
    rig.centre.publish(f"{ROOT}/cmd/open_gate", sign_command(KEY, "open_gate", {"zone": "hall"}),
                       properties=props)
    own = f"{ROOT}/reply/open_gate"
    assert rig.centre.wait_for(lambda: any(m.topic == own for m in rig.centre.messages[n:]), 10)
    reply = next(m for m in rig.centre.messages[n:] if m.topic == own)
    assert reply.body["ok"] is False and reply.body["reason"] == "bad_response_topic"
    assert reply.body["response_topic"] == asked and reply.correlation == b"corr-77"
    assert rig.opened == []
    assert not any(m.topic == asked and "command" in m.body for m in rig.centre.messages[n:])
    topic = f"{ROOT}/events/security"
    assert rig.centre.wait_for(lambda: any(
        m.topic == topic and m.body["data"]["reason"] == "bad_response_topic"
        for m in rig.centre.messages), 10)
    ok = rig.command("open_gate", sign_command(KEY, "open_gate", {"zone": "hall"}))
    assert ok["ok"] is True  # a response topic under reply/ works as before


@pytest.mark.timeout(60)
@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_a_command_signed_by_the_node_script_opens_over_mqtt(rig: Rig, tmp_path: Path) -> None:
    """The second implementation of docs/signing.md, end to end: signed in Node.js,
    published through mosquitto, accepted by the booth."""
    key_file = tmp_path / "command.key"
    key_file.write_bytes(KEY + b"\n")  # not hex: the key is the file's bytes
    signer = Path(__file__).resolve().parents[2] / "scripts" / "sign-command.mjs"
    payload = subprocess.run(["node", str(signer), "--key-file", str(key_file), "open_gate",
                              '{"zone": "hall", "by": "县中心"}'], capture_output=True,
                             check=True, timeout=30).stdout.strip()
    assert rig.command("open_gate", payload)["ok"] is True
    assert rig.opened == [{"zone": "hall", "by": "县中心"}]
    assert rig.command("open_gate", payload)["reason"] == "replayed"
