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


def _ms(offset_s: float = 0.0) -> int:
    return int((time.time() + offset_s) * 1000)


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
    (lambda: sign_command(KEY, "open_gate", {"zone": "hall"}, ts_ms=_ms(-120)), "stale"),
    (lambda: sign_command(KEY, "open_gate", {"zone": "hall"}, ts_ms=_ms(120)), "stale"),
    (lambda: sign_command(KEY, "open_gate", {"zone": "hall"}, legacy_ts=time.time() - 120),
     "stale"),
    (sign_command(KEY, "open_gate", {"zone": "hall"}, nonce="short"), "malformed"),
    (sign_command(KEY, "open_gate", {"zone": "hall"}, nonce="with space"), "malformed"),
    # integer seconds: neither form, refused rather than read as 1970 in milliseconds
    (lambda: sign_command(KEY, "open_gate", {"zone": "hall"}, ts_ms=int(time.time())),
     "malformed"),
    # what cannot be signed alike in every language: floats, non-ASCII keys, lone surrogates
    (sign_command(KEY, "open_gate", {"zone": "hall", "minutes": 1.5}), "malformed"),
    (sign_command(KEY, "open_gate", {"zone": "hall", "區": 1}), "malformed"),
    (b'{"args": {"zone": "\\ud800"}, "ts": 1795000000000, "nonce": "nnnnnnnn", "sig": "00"}',
     "malformed"),
    (json.dumps({"args": {"zone": "hall"}, "ts": 1795000000000, "nonce": "n" * 8,
                 "sig": "é" * 64}).encode(), "bad_signature"),
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


def test_legacy_float_seconds_are_accepted_and_marked(rig: Rig) -> None:
    """For one release the old form (ts in float seconds, signed over Python's float text)
    still opens; its ``command`` event says ``legacy_ts`` so the centre finds old signers."""
    payload = sign_command(KEY, "open_gate", {"zone": "hall"}, legacy_ts=time.time())
    assert b'"ts": 1' in payload and b"." in json.loads(payload)["ts"].__repr__().encode()
    assert rig.reg.dispatch("open_gate", payload, source="mqtt")["ok"] is True
    ms = sign_command(KEY, "open_gate", {"zone": "hall"})
    assert isinstance(json.loads(ms)["ts"], int)
    assert rig.reg.dispatch("open_gate", ms, source="mqtt")["ok"] is True
    assert [e.get("legacy_ts") for e in rig.data("command")] == [True, None]


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
