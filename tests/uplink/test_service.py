"""The MQTT uplink against a real mosquitto: drain, replay, refusals, status, reload."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gated.state.events import EventType
from gated.uplink.drain import TokenBucket
from gated.uplink.service import Uplink
from tests.support.mosquitto import Broker, env_has_mosquitto
from tests.support.polling import holds_within
from tests.support.uplink_harness import (
    BOOTH,
    BOOTH_PW,
    SITE,
    Booth,
    Centre,
    booth_config,
    check_order,
)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not env_has_mosquitto(), reason="mosquitto not installed")]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("broker"), users={"centre": "centre-pw",
                                                         BOOTH: BOOTH_PW})
    b.start()
    yield b
    b.stop()


@pytest.fixture
def booth(tmp_path: Path) -> Iterator[Booth]:
    bt = Booth(tmp_path / "state")
    yield bt
    bt.close()


@pytest.fixture
def centre(broker: Broker, request: pytest.FixtureRequest) -> Iterator[Centre]:
    c = Centre(broker, client_id=f"centre-{request.node.name}"[:60]).start()
    yield c
    c.stop()


def _uplink(broker: Broker, booth: Booth, tmp_path: Path, **kw: object) -> Uplink:
    cfg = booth_config(broker, tmp_path / "state", **kw)  # type: ignore[arg-type]
    return Uplink(cfg, booth.store, booth.loop, booth.outbox, None, None, None)


def _all_arrived(centre: Centre, n: int) -> tuple[int, int]:
    """(unique, duplicates) once ``n`` unique events arrived, or after 10 s. The uplink's own
    ``uplink.connected`` event lands in the replay lane when it is committed before the session
    starts, and then arrives just after the last backlog event the caller waited for."""
    centre.wait_for(lambda: check_order(centre.events())[0] >= n, 10)
    return check_order(centre.events())


def _depth(booth: Booth) -> int:
    return int(booth.query("SELECT count(*) FROM events")[0][0])


# ---------------------------------------------------------------------------- pure parts


def test_token_bucket_paces_after_the_burst() -> None:
    now = [0.0]
    b = TokenBucket(rate=10.0, burst=3, clock=lambda: now[0])
    assert [b.take() for _ in range(4)] == [True, True, True, False]
    assert b.wait_s() == pytest.approx(0.1)
    now[0] += 0.25
    assert [b.take() for _ in range(3)] == [True, True, False]
    now[0] += 100.0
    assert sum(b.take() for _ in range(10)) == 3  # never more than the burst


# ---------------------------------------------------------------------------- drain


@pytest.mark.timeout(60)
def test_backlog_and_live_events_arrive_once_in_order_and_rows_go_on_puback(
        broker: Broker, booth: Booth, centre: Centre, tmp_path: Path) -> None:
    backlog = booth.emit(600)
    with _uplink(broker, booth, tmp_path, max_inflight=16) as up:
        live = booth.emit(300)
        expected = {eid for _, eid in backlog + live}
        assert centre.wait_for(lambda: expected <= {m.body["id"] for m in centre.events()}, 30)
        unique, dups = _all_arrived(centre, 901)  # and the uplink.connected event
        assert unique == 901 and dups == 0
        assert holds_within(lambda: _depth(booth) == 0, 10)
        st = up.state()
        assert st["connected"] and st["acked"] == 901 and st["nacked"] == 0
        # uplink.connected may go first (live lane, beside the replay): look at the backlog's
        ev = next(e for e in centre.events() if e.body["type"] == "ticket.issued")
        assert ev.topic == f"gated/v1/{SITE}/{BOOTH}/events/ticket.issued"
        assert ev.body["site"] == SITE and ev.body["booth"] == BOOTH and "clock_ok" in ev.body


@pytest.mark.timeout(60)
def test_deletes_ride_along_with_the_next_commit_at_visitor_rates(
        broker: Broker, booth: Booth, centre: Centre, tmp_path: Path) -> None:
    """One event at a time, each acknowledged before the next: the acknowledged rows' deletes
    make no commit (no fsync, no wake-up) of their own; each goes with the next event's."""
    booth.loop.tick_s = 30.0  # no tick in this test: only events commit
    with _uplink(broker, booth, tmp_path) as up:
        assert holds_within(lambda: up.state()["acked"] >= 1, 10)  # uplink.connected
        acked = up.state()["acked"]
        commits = booth.loop.commits
        sent = []
        for i in range(5):
            sent += booth.emit(1)
            want = acked + i + 1
            assert holds_within(lambda: up.state()["acked"] == want, 10)  # noqa: B023
            time.sleep(0.6)  # a visitor's pace: the booth is quiet between events
        assert booth.loop.commits == commits + 5
        assert centre.wait_for(lambda: {eid for _, eid in sent} <= {
            m.body["id"] for m in centre.events()}, 10)
        booth.emit(1)  # its commit carries the last delete
        assert holds_within(lambda: _depth(booth) <= 1, 10)


@pytest.mark.timeout(60)
def test_stop_deletes_what_was_acknowledged_at_once(
        broker: Broker, booth: Booth, centre: Centre, tmp_path: Path) -> None:
    """The deletes still deferred when the uplink stops are a commit of their own: the drain
    started next (a reload) does not find those rows and send them again."""
    booth.loop.tick_s = 30.0  # no tick in this test
    with _uplink(broker, booth, tmp_path) as up:
        sent = booth.emit(3)
        assert holds_within(lambda: up.state()["acked"] >= 4, 10)  # and uplink.connected
        commits = booth.loop.commits
    assert holds_within(lambda: booth.loop.commits == commits + 1, 5)
    assert booth.outbox.depth == 0 and len(sent) == 3


@pytest.mark.timeout(60)
def test_replay_starts_on_connack_without_a_new_event(
        broker: Broker, booth: Booth, centre: Centre, tmp_path: Path) -> None:
    with _uplink(broker, booth, tmp_path, port=1) as up:  # nothing listens on port 1
        ids = {eid for _, eid in booth.emit(200)}
        assert holds_within(lambda: up.state()["last_error"] is not None, 10)
        assert not up.state()["connected"]
        assert _depth(booth) == 200  # nothing is lost while the broker is unreachable
    # The same outbox, a reachable broker, and no new event: the backlog must still go.
    with _uplink(broker, booth, tmp_path) as up:
        assert centre.wait_for(lambda: ids <= {m.body["id"] for m in centre.events()}, 20)
        assert holds_within(lambda: _depth(booth) == 0, 10)


@pytest.mark.timeout(60)
def test_refused_messages_go_to_dead_letter_and_never_block_the_head(
        broker: Broker, booth: Booth, centre: Centre, tmp_path: Path) -> None:
    before = booth.emit(20)
    denied = booth.emit(1, EventType.GATE_INPUTS)  # the fixture's ACL refuses this topic
    big = booth.emit(1, EventType.PRINTER_STATUS, lambda i: {"blob": "x" * 100_000})
    after = booth.emit(20)
    with _uplink(broker, booth, tmp_path, max_attempts=3, max_message_bytes=32 * 1024) as up:
        small = {eid for _, eid in before + after}
        assert centre.wait_for(lambda: small <= {m.body["id"] for m in centre.events()}, 20)
        dead_alarm = f"gated/v1/{SITE}/{BOOTH}/events/outbox.dead_letter"
        assert centre.wait_for(
            lambda: sum(m.topic == dead_alarm for m in centre.events()) >= 2, 30)
        dead = booth.query("SELECT seq, reason FROM dead_letter ORDER BY seq")
        # 0x87: not authorised, three times; too large: never sent, dead at once
        assert dead == [(denied[0][0], "puback:0x87 Not authorized"), (big[0][0], "too_large")]
        alarms = [m.body for m in centre.events() if m.topic == dead_alarm]
        assert {a["data"]["seq"] for a in alarms} == {denied[0][0], big[0][0]}
        assert all(a["priority"] == "alarm" for a in alarms)
        got = {m.body["id"] for m in centre.events()}
        assert big[0][1] not in got and denied[0][1] not in got
        assert holds_within(lambda: _depth(booth) == 0, 10)
        st = up.state()
        assert st["nacked"] == 4 and st["dead_lettered"] == 2 and st["connects"] == 1


@pytest.mark.timeout(60)
def test_token_bucket_paces_the_replay_but_not_live_events(
        broker: Broker, booth: Booth, centre: Centre, tmp_path: Path) -> None:
    backlog = booth.emit(300)
    with _uplink(broker, booth, tmp_path, replay_rate=100.0, replay_burst=10,
                 max_inflight=8, replay_share=0.5) as up:
        assert centre.wait_for(lambda: len(centre.events()) >= 20, 10)
        live = booth.emit(50)
        live_ids = {eid for _, eid in live}
        assert centre.wait_for(lambda: live_ids <= {m.body["id"] for m in centre.events()}, 10)
        got = {m.body["id"] for m in centre.events()}
        replayed = sum(1 for _, eid in backlog if eid in got)
        assert replayed < 300  # the live events overtook a replay still being paced
        assert up.state()["replaying"]
        assert {m.lane for m in centre.events() if m.body["id"] in live_ids} == {"live"}
        ids = {eid for _, eid in backlog}
        assert centre.wait_for(lambda: ids <= {m.body["id"] for m in centre.events()}, 20)
        unique, dups = _all_arrived(centre, 351)
        assert unique == 351 and dups == 0


# ---------------------------------------------------------------------------- connection


@pytest.mark.timeout(60)
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_wrong_credentials_are_a_clear_refusal_with_an_event(
        broker: Broker, booth: Booth, tmp_path: Path, protocol: str) -> None:
    with _uplink(broker, booth, tmp_path, password="wrong", protocol=protocol) as up:
        assert holds_within(lambda: up.state()["refused"] is not None, 10)
        st = up.state()
        assert st["refused"] == "not_authorised" and not st["connected"]
        assert "not_authorised" in st["last_error"]
        assert holds_within(lambda: booth.query("SELECT count(*) FROM events WHERE type = ?",
                                         "uplink.refused")[0][0] >= 1, 5)
        body = json.loads(booth.query("SELECT body FROM events WHERE type = ?",
                                      "uplink.refused")[0][0])
        assert body["data"]["reason"] == "not_authorised" and body["priority"] == "alarm"
        assert "wrong" not in json.dumps(body)  # the password never appears


@pytest.mark.timeout(60)
def test_tls_with_client_certificate_connects(
        broker: Broker, booth: Booth, centre: Centre, tmp_path: Path) -> None:
    ids = {eid for _, eid in booth.emit(5)}
    with _uplink(broker, booth, tmp_path, tls=True) as up:
        assert centre.wait_for(lambda: ids <= {m.body["id"] for m in centre.events()}, 15)
        assert up.state()["connected"] and up.state()["refused"] is None


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", ["wrong_ca", "no_client_cert", "plain_to_tls"])
def test_tls_mismatch_is_reported_not_retried_silently(
        broker: Broker, booth: Booth, tmp_path: Path, case: str) -> None:
    assert broker.certs is not None
    if case == "wrong_ca":
        up = _uplink(broker, booth, tmp_path, tls=True, ca=broker.certs.other_ca)
    elif case == "no_client_cert":
        up = _uplink(broker, booth, tmp_path, tls=True, client_cert=False)
    else:  # a TLS client pointed at the plain listener
        up = _uplink(broker, booth, tmp_path, tls=True)
        up.cfg = up.cfg.model_copy(update={"mqtt": up.cfg.mqtt.model_copy(
            update={"port": broker.port})})
    with up:
        assert holds_within(lambda: up.state()["refused"] is not None, 10)
        assert up.state()["refused"] == "tls_failure" and not up.state()["connected"]
        assert holds_within(lambda: booth.query("SELECT count(*) FROM events WHERE type = ?",
                                         "uplink.refused")[0][0] >= 1, 5)
        assert _depth(booth) >= 1


# ---------------------------------------------------------------------------- status, reload


@pytest.mark.timeout(60)
def test_status_is_retained_and_offline_on_stop(
        broker: Broker, booth: Booth, centre: Centre, tmp_path: Path) -> None:
    booth.emit(3)

    def status_fn() -> dict[str, object]:
        return {"version": "test", "uptime_s": 1.0,
                "devices": {"gate": {"kind": "gate", "state": "ready", "reason": ""}},
                "queue": {"waiting": 2}, "clock_synchronised": False}
    cfg = booth_config(broker, tmp_path / "state")
    topic = f"gated/v1/{SITE}/{BOOTH}/status"
    with Uplink(cfg, booth.store, booth.loop, booth.outbox, None, status_fn, None):
        assert centre.wait_for(lambda: any(m.topic == topic and m.body.get("online")
                                           for m in centre.messages), 10)
        st = next(m.body for m in centre.messages if m.topic == topic and m.body.get("online"))
        assert st["devices"]["gate"]["state"] == "ready" and st["queue"] == {"waiting": 2}
        assert st["clock_synchronised"] is False and st["state"] == "online"
        for key in ("depth", "oldest_age_s", "evicted_total", "dead_letters", "last_seq"):
            assert key in st["outbox"]
        assert "inflight" in st["uplink"] and st["uplink"]["connected"]
    assert centre.wait_for(lambda: any(m.topic == topic and m.body.get("online") is False
                                       for m in centre.messages), 10)
    # A monitor that subscribes later still gets it: it is retained.
    late = Centre(broker, client_id="late-centre", topics=(topic,)).start()
    try:
        assert late.wait_for(lambda: any(m.retain for m in late.messages), 10)
        assert late.messages[-1].body["state"] == "offline"
        assert late.messages[-1].body["reason"] == "stopped"
    finally:
        late.stop()


@pytest.mark.timeout(60)
def test_reload_reconnects_and_keeps_the_outbox(
        broker: Broker, booth: Booth, centre: Centre, tmp_path: Path) -> None:
    with _uplink(broker, booth, tmp_path, password="wrong") as up:
        ids = {eid for _, eid in booth.emit(100)}
        assert holds_within(lambda: up.state()["refused"] is not None, 10)
        up.reload(booth_config(broker, tmp_path / "state", protocol="3.1.1"))
        assert centre.wait_for(lambda: ids <= {m.body["id"] for m in centre.events()}, 20)
        assert holds_within(lambda: _depth(booth) == 0, 10)
        assert up.state()["protocol"] == "3.1.1"
