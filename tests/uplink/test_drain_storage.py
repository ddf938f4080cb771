"""The drain when the outbox cannot be read: a clear error, a retry a second later, no crash
of the network thread, and the session starts once the file reads again."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gated.state import Outbox
from gated.uplink.connection import Connected, Connection, Hooks
from gated.uplink.drain import STORAGE_RETRY_S, Drain
from tests.support.mosquitto import Broker
from tests.support.uplink_harness import Booth, booth_config


@pytest.fixture
def booth(tmp_path: Path) -> Iterator[Booth]:
    bt = Booth(tmp_path / "state")
    yield bt
    bt.close()


def test_an_unreadable_outbox_is_retried_not_fatal(booth: Booth, tmp_path: Path) -> None:
    # a broker is configured but never started: nothing here touches the network
    cfg = booth_config(Broker(tmp_path / "broker"), tmp_path / "state")
    conn = Connection(cfg, Hooks(lambda c: None, lambda g, r: None, lambda g, m, rc: None,
                                 lambda c, m: None, lambda k, d, a: None), lambda gen: b"{}")
    broken = tmp_path / "not-the-outbox.db"
    sqlite3.connect(broken).close()  # no events table: every read fails
    drain = Drain(cfg.mqtt, conn.topics, conn, lambda: sqlite3.connect(broken), booth.loop,
                  booth.outbox)
    drain.open()
    try:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, "drain-test", protocol=mqtt.MQTTv5)
        drain.inbox.put(("connected", Connected(client, 1, False, None, None)))
        drain.step()  # the session's first read fails: logged, retried later
        assert drain.session is None
        assert 0 < drain.timeout() <= STORAGE_RETRY_S
        drain.step()  # too early: not tried again
        assert drain.session is None
        with sqlite3.connect(broken) as fixed:  # the file reads again
            Outbox.ensure_schema(fixed)
        time.sleep(STORAGE_RETRY_S + 0.05)
        drain.step()
        assert drain.session is not None and drain.session.conn.generation == 1
    finally:
        drain.close()


def test_a_connection_that_ended_before_its_session_started_starts_none(
        booth: Booth, tmp_path: Path) -> None:
    cfg = booth_config(Broker(tmp_path / "broker"), tmp_path / "state")
    conn = Connection(cfg, Hooks(lambda c: None, lambda g, r: None, lambda g, m, rc: None,
                                 lambda c, m: None, lambda k, d, a: None), lambda gen: b"{}")
    drain = Drain(cfg.mqtt, conn.topics, conn, booth.store.reader, booth.loop, booth.outbox)
    drain.open()
    try:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, "drain-test", protocol=mqtt.MQTTv5)
        drain.inbox.put(("connected", Connected(client, 3, False, None, None)))
        drain.inbox.put(("disconnected", 3))
        drain.step()
        assert drain.session is None
    finally:
        drain.close()
