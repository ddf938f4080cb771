"""The network loop against a real mosquitto: one thread for the socket and its worker.

A plain paho client in the loop (no gated code around it) and a second, independent paho
client with its own thread as the peer that sees what went out."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gated.uplink.netloop import NetLoop, misc_interval
from tests.support.mosquitto import CENTRE_USER, Broker, env_has_mosquitto
from tests.support.polling import holds_within

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not env_has_mosquitto(), reason="mosquitto not installed")]

USER, PW = "loop-booth", "loop-pw"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("broker"), users={CENTRE_USER: "centre-pw", USER: PW})
    b.start()
    yield b
    b.stop()


class CountingWorker:
    """Steps counted; sleeps ``wait`` seconds between steps unless woken."""

    def __init__(self, wait: float = 3600.0) -> None:
        self.steps = 0
        self.wait = wait
        self.thread: int | None = None

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def step(self) -> None:
        self.steps += 1
        self.thread = threading.get_ident()

    def timeout(self) -> float:
        return self.wait


class Served:
    """A client whose socket ``NetLoop.serve`` runs on a thread of its own."""

    def __init__(self, broker: Broker, worker: CountingWorker, keepalive: int = 60) -> None:
        self.net = NetLoop()
        self.net.open()
        self.done = threading.Event()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.worker = worker
        c = mqtt.Client(CallbackAPIVersion.VERSION2, "netloop-test", protocol=mqtt.MQTTv5)
        c.username_pw_set(USER, PW)
        c.on_connect = lambda *a: self.connected.set()
        c.on_disconnect = lambda *a: (self.disconnected.set(), self.done.set())
        c.connect("127.0.0.1", broker.port, keepalive)
        self.client = c
        self.thread = threading.Thread(target=self.net.serve, args=(
            c, self.done, worker, misc_interval(keepalive)), daemon=True)
        self.thread.start()
        assert self.connected.wait(10)

    def stop(self) -> None:
        self.client.disconnect()
        self.net.wake()
        assert self.disconnected.wait(5)  # the loop wrote the DISCONNECT, paho closed
        self.done.set()
        self.thread.join(5)
        assert not self.thread.is_alive()
        self.net.close()


def peer(broker: Broker, topic: str) -> tuple[mqtt.Client, list[bytes], threading.Event]:
    got: list[bytes] = []
    ready = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, "netloop-peer", protocol=mqtt.MQTTv5)
    c.username_pw_set(CENTRE_USER, "centre-pw")
    c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
    c.on_subscribe = lambda *a: ready.set()
    c.on_message = lambda cl, u, m: got.append(bytes(m.payload))
    c.connect("127.0.0.1", broker.port, 30)
    c.loop_start()
    assert ready.wait(10)
    return c, got, ready


def test_a_publish_from_another_thread_goes_out_when_woken(broker: Broker) -> None:
    """The loop sleeps for an hour (worker) or ten seconds (keepalive bookkeeping); a message
    queued by another thread still leaves at once, written by the loop's thread."""
    topic = f"gated/v1/s/{USER}/events/x"
    p, got, _ = peer(broker, topic)
    served = Served(broker, CountingWorker(), keepalive=60)
    try:
        time.sleep(0.2)  # the loop is asleep now
        info = served.client.publish(topic, b"from-another-thread", qos=1)
        served.net.wake()
        assert holds_within(lambda: got == [b"from-another-thread"], 3)
        info.wait_for_publish(3)  # the PUBACK was read by the loop too
        assert info.is_published()
        assert served.worker.thread == served.thread.ident  # the worker runs on the loop
    finally:
        served.stop()
        p.loop_stop()
        p.disconnect()


def test_the_worker_is_stepped_when_its_timeout_runs_out(broker: Broker) -> None:
    served = Served(broker, CountingWorker(wait=0.05))
    try:
        assert holds_within(lambda: served.worker.steps >= 5, 5)
        served.worker.wait = 3600.0
        time.sleep(0.2)
        before = served.worker.steps
        served.net.wake()  # a message for the worker from another thread
        assert holds_within(lambda: served.worker.steps > before, 3)
    finally:
        served.stop()


def test_a_quiet_connection_is_kept_alive_by_the_loop(broker: Broker) -> None:
    """keepalive 2 s: nothing is published for 5 s, the broker (which drops a client silent
    for 1.5 keepalives) keeps it, because the loop sends the PINGREQs."""
    served = Served(broker, CountingWorker(), keepalive=2)
    try:
        assert not served.disconnected.wait(5)
        assert served.client.is_connected()
    finally:
        served.stop()


def test_the_loop_ends_when_the_broker_goes_away(tmp_path: Path) -> None:
    b = Broker(tmp_path / "b", users={CENTRE_USER: "centre-pw", USER: PW})
    b.start()
    served = Served(b, CountingWorker())
    try:
        b.stop()
        assert served.disconnected.wait(10)  # paho's on_disconnect ran, on the loop
        served.thread.join(5)
        assert not served.thread.is_alive()
    finally:
        served.done.set()
        served.net.close()
        b.stop()


def test_wake_is_harmless_before_open_and_after_close() -> None:
    net = NetLoop()
    net.wake()
    net.open()
    for _ in range(10_000):  # more than the pipe holds: a full pipe is a pending wake-up
        net.wake()
    net.close()
    net.wake()
