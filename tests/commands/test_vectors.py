"""docs/signing-vectors.json, checked three ways: gated's Python code, the Node.js signer
(scripts/sign-command.mjs) and the openssl CLI; and the booth accepts what Node signs."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from gated.booth.lists import delta_checksum, entries_checksum
from gated.commands.registry import CommandRegistry, load_command_key
from gated.commands.signing import canonical_command, signature
from tests.support.state_rig import StateRig

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "docs" / "signing-vectors.json").read_text(encoding="utf-8"))
SIGNER = ROOT / "scripts" / "sign-command.mjs"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node not installed (scripts/test-all.sh "
                                                     "installs Debian's nodejs)")


@pytest.mark.parametrize("v", VECTORS["commands"], ids=lambda v: v["title"][:40])
def test_python_reproduces_every_vector(v: dict[str, Any], tmp_path: Path) -> None:
    key_file = tmp_path / "command.key"
    key_file.write_text(v["key_file"], encoding="utf-8")
    key = load_command_key(key_file)
    assert key is not None and key.hex() == v["key_hex"]
    text = canonical_command(v["name"], v["args"], v["ts"], v["nonce"])
    assert text.decode() == v["canonical"] and text.hex() == v["canonical_hex"]
    assert signature(key, v["name"], v["args"], v["ts"], v["nonce"]) == v["sig"]
    assert isinstance(v["ts"], int) == (v["form"] == "ms")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize("v", VECTORS["commands"], ids=lambda v: v["title"][:40])
def test_openssl_agrees_on_every_signature(v: dict[str, Any]) -> None:
    out = subprocess.run(["openssl", "dgst", "-sha256", "-mac", "HMAC", "-macopt",
                          f"hexkey:{v['key_hex']}"], input=bytes.fromhex(v["canonical_hex"]),
                         capture_output=True, check=True).stdout.decode()
    assert out.strip().rsplit(" ", 1)[-1] == v["sig"]


@needs_node
def test_node_reproduces_every_vector() -> None:
    run = subprocess.run([NODE or "node", str(SIGNER), "--check-vectors",
                          str(ROOT / "docs" / "signing-vectors.json")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    total = (sum(5 if v["form"] == "ms" else 2 for v in VECTORS["commands"])
             + len(VECTORS["refused"]) + 2 * len(VECTORS["list_checksums"]))
    assert run.stdout.strip() == f"{total} passed, 0 failed"


@pytest.mark.parametrize("v", VECTORS["list_checksums"], ids=lambda v: v["title"][:40])
def test_list_checksum_vectors(v: dict[str, Any]) -> None:
    if v["op"] == "snapshot":
        assert entries_checksum(v["entries"]) == v["checksum"]
    else:
        assert delta_checksum(v["upserts"], v["deletes"]) == v["checksum"]


class Rig(StateRig):
    KEY = bytes.fromhex("00112233445566778899aabbccddeeff" * 2)

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp / "state", [CommandRegistry.ensure_schema])
        self.key_file = tmp / "command.key"
        self.key_file.write_text(self.KEY.hex() + "\n")
        self.reg = CommandRegistry()
        self.opened: list[dict[str, Any]] = []
        self.reg.register("open_gate", lambda a: (self.opened.append(a), {"ok": True})[1],
                          signed=True)
        self.reg.configure(key=load_command_key(self.key_file), max_skew_s=30, loop=self.loop)


def _node_sign(key_file: Path, name: str, args: dict[str, Any], **opts: str) -> bytes:
    extra = [a for k, v in opts.items() for a in (f"--{k.replace('_', '-')}", v)]
    run = subprocess.run([NODE or "node", str(SIGNER), "--key-file", str(key_file), *extra,
                          name, json.dumps(args, ensure_ascii=False)],
                         capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode()
    return run.stdout.strip()


@needs_node
def test_the_booth_accepts_what_node_signs(tmp_path: Path) -> None:
    with Rig(tmp_path) as rig:
        args = {"zone": "hall", "hold": True, "by": "值班 \"室\"\n"}
        payload = _node_sign(rig.key_file, "open_gate", args)
        assert rig.reg.dispatch("open_gate", payload, source="mqtt") == {"ok": True}
        assert rig.opened == [args]
        assert rig.reg.dispatch("open_gate", payload, source="mqtt")["reason"] == "replayed"
        forged = payload.replace(b'"hall"', b'"office"')
        assert rig.reg.dispatch("open_gate", forged, source="mqtt")["reason"] == "bad_signature"
        old = _node_sign(rig.key_file, "open_gate", args, ts_ms=str(int(time.time() * 1000)
                                                                    - 120_000))
        assert rig.reg.dispatch("open_gate", old, source="mqtt")["reason"] == "stale"
        assert len(rig.opened) == 1


@pytest.mark.parametrize("r", VECTORS["refused"], ids=lambda r: r["title"][:40])
def test_the_booth_refuses_what_cannot_be_signed_alike(r: dict[str, Any], tmp_path: Path) -> None:
    with Rig(tmp_path) as rig:
        args = r.get("args", {"zone": "hall"})
        nonce = r.get("nonce", "0123456789abcdef")
        ts = r.get("ts", time.time_ns() // 1_000_000)
        body = {"args": args, "ts": ts, "nonce": nonce,
                "sig": signature(rig.KEY, "open_gate", args, ts, nonce)}
        reply = rig.reg.dispatch("open_gate", json.dumps(body, ensure_ascii=False).encode(),
                                 source="mqtt")
        assert (reply["ok"], reply["reason"]) == (False, r["reason"]), reply
        assert rig.opened == []
