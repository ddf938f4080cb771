"""The command registry on a real store and state thread: signatures, replay, bad payloads."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gated.commands.registry import CommandRegistry, load_command_key, sign_command
from tests.support.state_rig import StateRig

KEY = bytes.fromhex("11" * 32)


class Rig(StateRig):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, [CommandRegistry.ensure_schema])
        self.reg = CommandRegistry()
        self.calls: list[dict[str, Any]] = []
        self.reg.register("open_gate", self._handler, signed=True, help="zone=<zone>")
        self.reg.register("echo", self._handler, max_bytes=200)
        self.reg.register("import", self._handler, local_only=True, max_bytes=10_000_000)
        self.reg.register("boom", lambda a: 1 / 0)  # type: ignore[arg-type,return-value]
        self.reg.configure(key=KEY, max_skew_s=30, max_bytes=4096, loop=self.loop)

    def _handler(self, args: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(args)
        return {"ok": True, "args": args}

    def data(self, etype: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events(etype)]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with Rig(tmp_path) as r:
        yield r


def test_signed_command_accepted_once(rig: Rig) -> None:
    payload = sign_command(KEY, "open_gate", {"zone": "hall"})
    assert rig.reg.dispatch("open_gate", payload, source="mqtt")["ok"]
    again = rig.reg.dispatch("open_gate", payload, source="mqtt")
    assert again["reason"] == "replayed"
    assert rig.calls == [{"zone": "hall"}]
    assert [e["reason"] for e in rig.data("security")] == ["replayed"]
    assert rig.data("command")[0] == {"name": "open_gate", "source": "mqtt", "ok": True}


@pytest.mark.parametrize(("payload", "reason"), [
    (json.dumps({"args": {"zone": "hall"}}).encode(), "unsigned"),
    (sign_command(b"wrong key", "open_gate", {"zone": "hall"}), "bad_signature"),
    (sign_command(KEY, "open_gate", {"zone": "office"})
     .replace(b'"office"', b'"hall"'), "bad_signature"),
    # timestamps relative to when the test runs, not to when the suite was collected
    (lambda: sign_command(KEY, "open_gate", {"zone": "hall"}, ts=time.time() - 120), "stale"),
    (lambda: sign_command(KEY, "open_gate", {"zone": "hall"}, ts=time.time() + 120), "stale"),
    (sign_command(KEY, "open_gate", {"zone": "hall"}, nonce="short"), "malformed"),
    (b"{not json", "malformed"),
    (b'{"args": [1, 2]}', "malformed"),
    (b"x" * 5000, "too_large"),
])
def test_refused_signed_commands(rig: Rig, payload: bytes | Callable[[], bytes],
                                 reason: str) -> None:
    raw = payload() if callable(payload) else payload
    reply = rig.reg.dispatch("open_gate", raw, source="mqtt")
    assert (reply["ok"], reply["reason"]) == (False, reason)
    assert rig.calls == []
    assert [e["reason"] for e in rig.data("security")] == [reason]


def test_unknown_command_and_handler_error(rig: Rig) -> None:
    assert rig.reg.dispatch("format_disk", b"{}", source="mqtt")["reason"] == "unknown_command"
    assert rig.reg.dispatch("boom", b"{}", source="mqtt")["reason"] == "handler_error"
    assert rig.reg.dispatch("echo", b'{"args": {"a": "' + b"x" * 300 + b'"}}',
                            source="mqtt")["reason"] == "too_large"
    assert rig.reg.dispatch("echo", b'{"args": {"a": 1}}', source="mqtt") == {
        "ok": True, "args": {"a": 1}}
    assert [e["reason"] for e in rig.data("security")] == ["unknown_command", "too_large"]


def test_local_socket_needs_no_signature(rig: Rig) -> None:
    reply = rig.reg.dispatch("open_gate", json.dumps({"args": {"zone": "hall"}}).encode(),
                             source="local")
    assert reply["ok"] and rig.data("security") == []


def test_local_only_command_is_refused_over_mqtt_before_parsing(rig: Rig) -> None:
    big = json.dumps({"args": {"rows": ["x" * 100] * 50_000}}).encode()  # 5 MB
    assert rig.reg.dispatch("import", big, source="mqtt")["reason"] == "local_only"
    assert rig.reg.dispatch("import", b"{not json", source="mqtt")["reason"] == "local_only"
    assert rig.calls == []
    assert rig.reg.dispatch("import", big, source="local")["ok"] is True
    # the first refusal is reported at once, the second summed when its window ends
    assert [(e["reason"], e["count"]) for e in rig.data("security")] == [("local_only", 1)]
    assert rig.reg.help()["import"].startswith("[local] ")


def test_nonces_survive_a_restart(tmp_path: Path) -> None:
    payload = sign_command(KEY, "open_gate", {"zone": "hall"})
    first = Rig(tmp_path)
    try:
        assert first.reg.dispatch("open_gate", payload, source="mqtt")["ok"]
    finally:
        first.close()
    second = Rig(tmp_path)
    try:
        assert second.reg.dispatch("open_gate", payload, source="mqtt")["reason"] == "replayed"
    finally:
        second.close()


def test_no_command_key_refuses_signed_commands(rig: Rig, tmp_path: Path) -> None:
    rig.reg.configure(key=None, max_skew_s=30, loop=rig.loop)
    payload = sign_command(KEY, "open_gate", {"zone": "hall"})
    assert rig.reg.dispatch("open_gate", payload, source="mqtt")["reason"] == "no_command_key"
    key_file = tmp_path / "command.key"
    key_file.write_text(KEY.hex() + "\n")
    assert load_command_key(key_file) == KEY
    assert load_command_key(tmp_path / "missing") is None
    assert "open_gate" in rig.reg.dispatch("help", b"{}", source="mqtt")["commands"]
    assert rig.reg.dispatch("help", b"", source="mqtt")["reason"] == "malformed"
