"""The drain when the outbox cannot be read: a clear error, a retry a second later, no crash
of the network thread, and the session starts once the file reads again."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gated.state import Outbox
from gated.uplink.connection import Connected, Connection, Hooks
from gated.uplink.drain import STORAGE_RETRY_S, Drain
from tests.support.mosquitto import Broker
from tests.support.uplink_harness import Booth, booth_config


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Broker:
    """Only its address and files: never started, nothing here touches the network."""
    return Broker(tmp_path_factory.mktemp("broker"))


@pytest.fixture
def booth(tmp_path: Path) -> Iterator[Booth]:
    bt = Booth(tmp_path / "state")
    yield bt
    bt.close()


def make_drain(broker: Broker, booth: Booth, reader: Callable[[], sqlite3.Connection]) -> Drain:
    cfg = booth_config(broker, booth.store.state_dir)
    conn = Connection(cfg, Hooks(lambda c: None, lambda g, r: None, lambda g, m, rc: None,
                                 lambda c, m: None, lambda k, d, a: None), lambda gen: b"{}")
    drain = Drain(cfg.mqtt, conn.topics, conn, reader, booth.loop, booth.outbox)
    drain.open()
    return drain


def connack(generation: int) -> Connected:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, "drain-test", protocol=mqtt.MQTTv5)
    return Connected(client, generation, False, None, None)


def test_an_unreadable_outbox_is_retried_not_fatal(broker: Broker, booth: Booth,
                                                    tmp_path: Path) -> None:
    broken = tmp_path / "not-the-outbox.db"
    sqlite3.connect(broken).close()  # no events table: every read fails
    drain = make_drain(broker, booth, lambda: sqlite3.connect(broken))
    try:
        drain.inbox.put(("connected", connack(1)))
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
        broker: Broker, booth: Booth) -> None:
    drain = make_drain(broker, booth, booth.store.reader)
    try:
        drain.inbox.put(("connected", connack(3)))
        drain.inbox.put(("disconnected", 3))
        drain.step()
        assert drain.session is None
    finally:
        drain.close()
