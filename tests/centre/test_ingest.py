"""The ingest against a real mosquitto and a real PostgreSQL, with real booth uplinks: two
workers in one shared-subscription group, one killed with SIGKILL mid-stream and restarted,
the broker restarted; every event ends up in the database exactly once. A 3.1.1 booth whose
publish the broker's ACL drops shows as an unexplained gap; a rogue booth is quarantined while
a good one keeps flowing."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from gated.state.events import EventType
from gated.uplink.service import Uplink
from tests.centre.support import (
    BoothClient,
    IngestProcess,
    centre_config,
    envelope,
    scalar,
    ticket_data,
    wait_until,
)
from tests.support.mosquitto import Broker
from tests.support.uplink_harness import BOOTH, SITE, Booth, booth_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TOTAL = 8_000


def _connected(w: IngestProcess) -> bool:
    return bool(w.log_events("ingest_mqtt_connected"))


def _stored(db: Any, site: str = SITE, booth: str = BOOTH) -> int:
    return int(scalar(db, "SELECT count(*) FROM events WHERE site = %s AND booth = %s",
                      site, booth))


def test_two_workers_a_sigkill_and_a_broker_restart_store_every_event_once(
        tmp_path: Path, broker: Broker, centre_db: str, db: Any) -> None:
    cfg = centre_config(tmp_path, broker, centre_db)
    w1 = IngestProcess(cfg, "w1", tmp_path).start()
    w2 = IngestProcess(cfg, "w2", tmp_path).start()
    booth = Booth(tmp_path / "state")
    # the booth's default first retry (0.5-1 s): the workers are back and subscribed before it
    # (see the README on mosquitto and shared subscriptions after a restart)
    uplink = Uplink(booth_config(broker, tmp_path / "state", reconnect_min_s=1.0,
                                 reconnect_max_s=2.0), booth.store, booth.loop, booth.outbox,
                    None, None, None)
    emitted: list[tuple[int, str]] = []
    try:
        assert wait_until(lambda: _connected(w1) and _connected(w2), 20), w1.log_path
        uplink.start()

        def produce() -> None:
            for _ in range(TOTAL // 200):
                emitted.extend(booth.emit(200, payload=ticket_data))
                time.sleep(0.02)
        producer = threading.Thread(target=produce)
        producer.start()
        assert wait_until(lambda: _stored(db) >= TOTAL // 4, 60)
        # Kill w1 in the middle of a batch: hold a lock its next insert must wait for, see it
        # wait (its events inserted, not committed), SIGKILL it, let go.
        with psycopg.connect(centre_db) as locker:
            locker.execute("LOCK TABLE seq_pending IN EXCLUSIVE MODE")
            assert wait_until(lambda: scalar(
                db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                "'gated-centre-w1' AND wait_event_type = 'Lock'") == 1, 20)
            w1.kill()
            locker.rollback()
        # w1's share keeps queueing in its session meanwhile; w2 goes on, then loses the broker
        assert wait_until(lambda: _stored(db) >= TOTAL // 4 + 200, 60), _stored(db)
        broker.restart()
        w1 = IngestProcess(cfg, "w1", tmp_path).start()  # same name: same MQTT session
        producer.join(60)
        assert len(emitted) == TOTAL
        assert wait_until(lambda: booth.outbox.depth == 0, 60), booth.outbox.depth
        # the booth may still add its own events (uplink.connected, metrics): follow it
        assert wait_until(lambda: _stored(db) == booth.outbox.last_seq, 90), (
            _stored(db), booth.outbox.last_seq)
        last = booth.outbox.last_seq
        rows = {(r[0], r[1]) for r in db.execute(
            "SELECT seq, id FROM events WHERE site = %s AND booth = %s", (SITE, BOOTH))}
        assert set(emitted) <= rows  # every event, under its own seq and id
        seqs = {seq for seq, _ in rows}
        assert seqs == set(range(1, max(seqs) + 1)) and max(seqs) >= last  # once each, no hole
        assert scalar(db, "SELECT count(*) FROM quarantine") == 0
        top = max(seqs)
        assert wait_until(lambda: db.execute(
            "SELECT contiguous, max_seq, open_gaps FROM booth_progress").fetchall()
            == [(top, top, 0)], 10)
        assert w2.terminate() == 0
        assert w1.terminate() == 0
        stored_by_w2 = w2.log_events("ingest_stopped")[-1]["stored"]
        assert 0 < stored_by_w2 < last  # the two split the load
    finally:
        uplink.stop()
        booth.close()
        w1.close()
        w2.close()


def test_a_311_booth_whose_publish_the_acl_drops_shows_as_an_unexplained_gap(
        tmp_path: Path, broker: Broker, centre_db: str, db: Any) -> None:
    cfg = centre_config(tmp_path, broker, centre_db)
    booth = Booth(tmp_path / "state")
    uplink = Uplink(booth_config(broker, tmp_path / "state", protocol="3.1.1"), booth.store,
                    booth.loop, booth.outbox, None, None, None)
    with IngestProcess(cfg, "w1", tmp_path) as w:
        try:
            assert wait_until(lambda: _connected(w), 20)
            uplink.start()
            booth.emit(5, payload=ticket_data)
            # gate.inputs is the topic the test ACL denies: a 3.1.1 broker still acknowledges
            # the publish (3.1.1 has no way to refuse one) and drops it
            ((denied, _),) = booth.emit(1, EventType.GATE_INPUTS, payload=lambda i: {
                "device": "hall_gate", "open_limit": False, "closed_limit": True,
                "safety_beam": False, "fire_alarm": False})
            booth.emit(5, payload=ticket_data)
            assert wait_until(lambda: booth.outbox.depth == 0, 20)
            last = booth.outbox.last_seq
            assert wait_until(lambda: _stored(db) == last - 1, 20)
            assert wait_until(lambda: db.execute(
                "SELECT first_seq, last_seq, explained FROM booth_gaps").fetchall()
                == [(denied, denied, False)], 10)
            assert db.execute("SELECT contiguous, max_seq, open_gaps, missing_seqs FROM "
                              "booth_progress").fetchone() == (denied - 1, last, 1, 1)
        finally:
            uplink.stop()
            booth.close()
        assert w.terminate() == 0


def test_a_rogue_booth_is_quarantined_and_every_other_booth_keeps_flowing(
        tmp_path: Path, broker: Broker, centre_db: str, db: Any) -> None:
    cfg = centre_config(tmp_path, broker, centre_db,
                        extra='sites = ["s1"]\nmax_message_bytes = 4096\n')
    good = BoothClient(broker, "east-gate")
    rogue = BoothClient(broker, "rogue", protocol=mqtt.MQTTv311)
    topic = "gated/v1/s1/rogue/events/ticket.issued"
    first = envelope("s1", "rogue", 1)
    bad: list[tuple[str, bytes | dict[str, Any]]] = [
        (topic, b'{"id": "trunc'),  # malformed JSON
        (topic, b"[1, 2]"),  # JSON, not an object
        (topic, envelope("s1", "rogue", 2, over={"seq": "two"})),  # fails the envelope's schema
        (topic, envelope("s1", "rogue", 3, over={"ts": "yesterday"})),
        (topic, envelope("s2", "rogue", 4)),  # the body's site is not the topic's
        ("gated/v1/s9/rogue/events/ticket.issued", envelope("s9", "rogue", 5)),  # unknown site
        (topic, first),
        (topic, envelope("s1", "rogue", 1)),  # seq 1 again, under a new id
        (topic, envelope("s1", "rogue", 6, data={"pad": "x" * 5000})),  # too large
        (topic, envelope("s1", "rogue", 7, data={"text": "a\u0000b"})),  # jsonb refuses NUL
        ("gated/v1/s1/rogue/events", envelope("s1", "rogue", 8)),  # no type in the topic
    ]
    with IngestProcess(cfg, "w1", tmp_path) as w:
        try:
            assert wait_until(lambda: _connected(w), 20)
            for i in range(1, 201):
                good.publish("gated/v1/s1/east-gate/events/ticket.issued",
                             envelope("s1", "east-gate", i))
                if i % 18 == 0 and bad:
                    rogue.publish(*bad.pop(0))
            assert not bad
            assert wait_until(lambda: _stored(db, "s1", "east-gate") == 200, 30)
            assert wait_until(lambda: scalar(db, "SELECT count(*) FROM quarantine") == 10, 30)
            reasons = dict(db.execute("SELECT reason, sum(messages) FROM quarantine_counts "
                                      "WHERE booth = 'rogue' GROUP BY reason").fetchall())
            assert reasons == {"malformed_json": 3, "bad_schema": 2, "topic_mismatch": 1,
                               "unknown_site": 1, "seq_reused": 1, "too_large": 1,
                               "bad_topic": 1}, reasons
            assert scalar(db, "SELECT id FROM events WHERE booth = 'rogue'") == first["id"]
            reused = db.execute("SELECT event_id, seq, detail FROM quarantine WHERE "
                                "reason = 'seq_reused'").fetchone()
            assert reused[1] == 1 and reused[0] != first["id"] and first["id"] in reused[2]
            assert wait_until(lambda: db.execute(
                "SELECT contiguous FROM booth_progress WHERE booth = 'east-gate'").fetchone()
                == (200,), 10)
            assert w.alive()
        finally:
            good.close()
            rogue.close()
        assert w.terminate() == 0
    log = w.log_path.read_text(errors="replace")
    assert "Traceback" not in log
    assert w.log_events("ingest_stopped")[-1]["quarantined"]["malformed_json"] == 3


def test_events_a_restarted_mosquitto_drops_before_any_worker_is_back_show_as_a_gap(
        tmp_path: Path, broker: Broker, centre_db: str, db: Any) -> None:
    """mosquitto 2.0 does not restore shared subscriptions from its persistence file: with
    every worker away during a restart, it answers the booth's events "no matching
    subscribers" (PUBACK 0x10), the booth deletes them, and the centre shows the hole."""
    cfg = centre_config(tmp_path, broker, centre_db)
    booth = Booth(tmp_path / "state")
    uplink = Uplink(booth_config(broker, tmp_path / "state"), booth.store, booth.loop,
                    booth.outbox, None, None, None)
    w = IngestProcess(cfg, "w1", tmp_path).start()
    try:
        assert wait_until(lambda: _connected(w), 20)
        uplink.start()
        booth.emit(5, payload=ticket_data)
        assert wait_until(lambda: booth.outbox.depth == 0 and _stored(db) >= 5, 20)
        assert w.terminate() == 0  # its session (and, until the restart, its share) stays
        broker.restart()
        lost = booth.emit(5, payload=ticket_data)
        assert wait_until(lambda: booth.outbox.depth == 0, 20)
        w = IngestProcess(cfg, "w1", tmp_path).start()
        assert wait_until(lambda: _connected(w), 20)
        after = booth.emit(5, payload=ticket_data)
        assert wait_until(lambda: {s for s, _ in after} <= {r[0] for r in db.execute(
            "SELECT seq FROM events")}, 20)
        stored = {r[0] for r in db.execute("SELECT seq FROM events")}
        assert not {s for s, _ in lost} & stored
        assert wait_until(lambda: scalar(db, "SELECT open_gaps FROM booth_progress") == 1, 10)
        (first, last, explained), = db.execute(
            "SELECT first_seq, last_seq, explained FROM booth_gaps").fetchall()
        assert first <= lost[0][0] and lost[-1][0] <= last and not explained
        assert w.terminate() == 0
    finally:
        uplink.stop()
        booth.close()
        w.close()
