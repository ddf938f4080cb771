"""``gated monitor``: the table from retained status and events, against a real broker."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from gated.app.cli import main
from gated.uplink.monitor import BoothTable, run_monitor
from gated.uplink.service import Uplink
from tests.support.mosquitto import Broker, env_has_mosquitto
from tests.support.uplink_harness import BOOTH, BOOTH_PW, SITE, Booth, booth_config


def test_table_folds_status_and_events() -> None:
    t = BoothTable()
    t.feed("gated/v1/s1/east-gate/status", json.dumps({
        "state": "online", "devices": {"gate": {"state": "ready"},
                                       "printer": {"state": "degraded"}},
        "outbox": {"depth": 12, "oldest_age_s": 300}}).encode(), now=0.0)
    t.feed("gated/v1/s1/east-gate/events/ticket.issued",
           json.dumps({"type": "ticket.issued"}).encode(), now=5.0)
    t.feed("gated/v1/s1/west-gate/status", json.dumps({"online": False}).encode(), now=0.0)
    t.feed("gated/v1/s1/_site/sync/alerts", b"{}", now=0.0)  # not a booth
    t.feed("gated/v1/s1/west-gate/status", b"not json", now=0.0)
    text = t.render(now=65.0)
    east = next(line for line in text.splitlines() if "east-gate" in line)
    assert "online" in east and "1/2 ready (printer:degraded)" in east
    assert " 12 " in east and "5m" in east and "ticket.issued 60s ago" in east
    west = next(line for line in text.splitlines() if "west-gate" in line)
    assert "offline" in west
    assert text.splitlines()[-1] == "2 booth(s), 1 online"


def test_a_late_will_does_not_hide_a_booth_that_is_back() -> None:
    """Status messages are ordered by (session, connection): the will of an earlier
    connection, published after the booth reconnected (a broker cluster can), is ignored."""
    t = BoothTable()
    topic = "gated/v1/s1/east-gate/status"

    def status(**kw: object) -> bytes:
        return json.dumps(kw).encode()
    t.feed(topic, status(online=True, state="online", session=4, connection=2), now=0.0)
    t.feed(topic, status(online=False, state="offline", reason="lost", session=4,
                         connection=1), now=1.0)  # the previous connection's will, late
    t.feed(topic, status(online=False, state="offline", reason="lost", session=3,
                         connection=7), now=1.0)  # the previous run's
    row = t.rows[("s1", "east-gate")]
    assert (row.state, row.late) == ("online", 2)
    t.feed(topic, status(online=False, state="offline", reason="lost", session=4,
                         connection=2), now=2.0)  # this connection's own will: it is gone
    assert row.state == "offline"
    t.feed(topic, status(online=True, state="online", session=5, connection=1), now=3.0)
    assert row.state == "online" and row.order == (5, 1)


@pytest.mark.integration
@pytest.mark.skipif(not env_has_mosquitto(), reason="mosquitto not installed")
@pytest.mark.timeout(60)
def test_monitor_lists_a_live_booth_and_refuses_quietly_on_bad_login(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broker = Broker(tmp_path / "broker", users={"centre": "centre-pw", BOOTH: BOOTH_PW})
    broker.start()
    booth = Booth(tmp_path / "state")
    booth.emit(7)
    up = Uplink(booth_config(broker, tmp_path / "state"), booth.store, booth.loop,
                booth.outbox, None, lambda: {"devices": {
                    "gate": {"kind": "gate", "state": "ready", "reason": ""}}}, None)
    pw = tmp_path / "centre.pass"
    pw.write_text("centre-pw\n")
    try:
        up.start()
        out = io.StringIO()
        assert run_monitor("127.0.0.1", broker.port, site=SITE, once=True, wait=1.5,
                           username="centre", password_file=pw, out=out) == 0
        row = next(line for line in out.getvalue().splitlines() if BOOTH in line)
        assert "online" in row and "1/1 ready" in row
        # the same through the CLI
        assert main(["monitor", "--port", str(broker.port), "--once", "--wait", "1",
                     "--username", "centre", "--password-file", str(pw)]) == 0
        assert BOOTH in capsys.readouterr().out
        bad = tmp_path / "bad.pass"
        bad.write_text("nope\n")
        assert run_monitor("127.0.0.1", broker.port, once=True, wait=0.5,
                           username="centre", password_file=bad, out=io.StringIO()) == 1
        assert "refused" in capsys.readouterr().err
        missing = io.StringIO()
        assert run_monitor("127.0.0.1", broker.port, once=True, wait=0.5, username="centre",
                           password_file=tmp_path / "nowhere.pass", out=missing) == 1
        assert "nowhere.pass" in missing.getvalue()
    finally:
        up.stop()
        booth.close()
        broker.stop()
