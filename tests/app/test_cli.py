"""CLI commands that work without a running daemon."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gated.app.cli import main, parse_params
from gated.config import OutboxConfig
from gated.state.events import Event, EventType
from gated.state.outbox import Outbox, ensure_schema
from gated.state.store import Store


def _config(tmp: Path) -> Path:
    cfg = tmp / "gated.toml"
    cfg.write_text(f'state_dir = "{tmp / "state"}"\n[site]\nid = "demo"\n[booth]\nid = "b1"\n')
    return cfg


def test_outbox_stats_reads_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    store = Store(tmp_path / "state", [ensure_schema])
    store.open()
    ob = Outbox(store, OutboxConfig(), "demo", "b1")
    with store.transaction():
        for _ in range(7):
            ob.append(Event.make(EventType.TICKET_ISSUED, {"ticket": "A001"}))
    store.close()
    assert main(["outbox", "stats", "-c", str(cfg), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["depth"] == 7 and stats["last_seq"] == 7 and stats["oldest_seq"] == 1
    assert main(["outbox", "peek", "-c", str(cfg), "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "7 events waiting, the first 2:"
    assert len(lines) == 3 and lines[1].startswith("1 ticket.issued {")


def test_outbox_json_is_json_and_empty_says_zero(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    with Store(tmp_path / "state", [ensure_schema]) as store:
        ob = Outbox(store, OutboxConfig(), "demo", "b1")
        with store.transaction():
            for i in range(3):
                ob.append(Event.make(EventType.TICKET_ISSUED, {"i": i}))
        with store.transaction():
            assert ob.refused(2, "puback:0x97 Quota exceeded", max_attempts=1) == (True, 1)
    assert main(["outbox", "dead", "-c", str(cfg)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "1 dead letters:", "2 ticket.issued puback:0x97 Quota exceeded"]
    assert main(["outbox", "peek", "-c", str(cfg), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["seq"], r["type"]) for r in rows] == [(1, "ticket.issued"), (3, "ticket.issued")]
    assert rows[1]["event"]["data"] == {"i": 2} and rows[1]["event"]["seq"] == 3
    assert main(["outbox", "dead", "-c", str(cfg), "--json"]) == 0
    (dead,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert dead["reason"] == "puback:0x97 Quota exceeded" and dead["event"]["data"] == {"i": 1}
    with Store(tmp_path / "state", [ensure_schema]) as store:
        ob = Outbox(store, OutboxConfig(), "demo", "b1")
        with store.transaction():
            ob.ack([1, 3])
            store.conn.execute("DELETE FROM dead_letter")
    for action in ("peek", "dead"):
        assert main(["outbox", action, "-c", str(cfg)]) == 0
        assert capsys.readouterr().out.startswith("0 ")
        assert main(["outbox", action, "-c", str(cfg), "--json"]) == 0
        assert capsys.readouterr().out == ""


def test_outbox_stats_without_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["outbox", "stats", "-c", str(_config(tmp_path))]) == 1
    assert "no outbox at" in capsys.readouterr().err


def test_status_without_daemon_says_so(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "-c", str(_config(tmp_path))]) == 1
    assert "is gated running" in capsys.readouterr().err


@pytest.mark.parametrize(("params", "expected"), [
    (["counter=3"], {"counter": 3}),
    (["services=[\"general\",\"social\"]", "priority=true"],
     {"services": ["general", "social"], "priority": True}),
    (["zone=hall", "mode=free_passage"], {"zone": "hall", "mode": "free_passage"}),
])
def test_parse_params(params: list[str], expected: dict[str, object]) -> None:
    assert parse_params(params) == expected


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "simulate" in capsys.readouterr().out


def test_hall_passwd_prints_a_salted_secret_never_the_pin() -> None:
    import subprocess
    import sys

    from gated.hall import verify_secret

    out = subprocess.run([sys.executable, "-m", "gated.app.cli", "hall", "passwd", "--stdin"],
                         input="2468\n", capture_output=True, text=True, timeout=30)
    secret = out.stdout.strip()
    assert out.returncode == 0 and secret.startswith("scrypt$") and "2468" not in secret
    assert verify_secret("2468", secret)
    short = subprocess.run([sys.executable, "-m", "gated.app.cli", "hall", "passwd", "--stdin"],
                           input="12\n", capture_output=True, text=True, timeout=30)
    assert short.returncode == 1 and "4-64" in short.stderr
