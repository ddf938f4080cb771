"""The control socket serves every connection on its own thread, so a held subscription never
blocks a command; the subscribe mode streams a status, then every committed event, and lets a
subscriber that falls behind go without ever making the state thread wait."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gated.app.simulate import SimBooth
from gated.app.stream import EventStream
from gated.control import ControlError, call, socket_path, subscribe
from gated.state import EventType
from tests.support.daemon import DaemonProcess
from tests.support.polling import wait_for
from tests.support.state_rig import StateRig

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimBooth, Path]]:
    tmp = tmp_path_factory.mktemp("control")
    with SimBooth(tmp / "sim", mqtt="off") as sim, DaemonProcess(sim.config_path, tmp) as d:
        d.wait_for("READY=1")
        yield sim, sim.directory / "state"


def test_subscription_streams_status_then_committed_events_with_the_actor(
        daemon: tuple[SimBooth, Path]) -> None:
    _, state = daemon
    with subscribe(state, status_interval_s=1.0) as sub:
        it = iter(sub)
        first = next(it)
        assert first["kind"] == "status" and first["status"]["booth"] == "sim-booth"
        actor = {"source": "hall", "role": "guard", "clerk": "g01"}
        reply = call(state, "manual_ticket", {"service": "social"}, actor=actor)
        assert reply["ok"], reply
        seen: list[dict[str, Any]] = []
        for msg in it:
            if msg["kind"] == "event":
                seen.append(msg["event"])
                if msg["event"]["type"] == "command":
                    break
        types = [e["type"] for e in seen]
        assert "ticket.issued" in types
        assert seen[-1]["data"] == {"name": "manual_ticket", "source": "local", "ok": True,
                                    "actor": actor}
        seqs = [e["seq"] for e in seen]
        assert seqs == sorted(seqs)
        # a status follows queue changes, without waiting for the periodic one
        status = next(m for m in it if m["kind"] == "status")
        assert status["status"]["queue"]["services"]["social"]["waiting"] >= 1


def test_a_held_subscription_never_blocks_a_command(daemon: tuple[SimBooth, Path]) -> None:
    _, state = daemon
    idle = [subscribe(state, status_interval_s=30.0) for _ in range(3)]  # never read
    try:
        for _ in range(3):
            assert call(state, "get_status", timeout=3.0)["ok"]
    finally:
        for s in idle:
            s.close()


def test_bad_actor_and_bad_stream_requests_are_refused(daemon: tuple[SimBooth, Path]) -> None:
    _, state = daemon
    reply = call(state, "get_status", actor={"clerk": "x" * 500})
    assert not reply["ok"] and "actor" in reply["reason"]
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(socket_path(state)))
        s.sendall(json.dumps({"stream": "everything"}).encode())
        s.shutdown(socket.SHUT_WR)
        assert "no such stream" in json.loads(s.recv(4096))["reason"]


def test_a_subscriber_that_falls_behind_is_dropped_and_the_state_thread_never_waits(
        tmp_path: Path) -> None:
    with StateRig(tmp_path) as rig:
        stream = EventStream("s", "b", lambda: {"booth": "b"}, queue_batches=4,
                             send_timeout_s=30.0)
        rig.loop.on_commit.append(stream.publish)
        ours, theirs = socket.socketpair()
        for s in (ours, theirs):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stop = threading.Event()
        server = threading.Thread(target=stream.serve, args=(theirs, 60.0, stop), daemon=True)
        server.start()
        wait_for(lambda: stream.subscribers == 1, what="the subscriber registered")
        big = "x" * 20_000  # one event fills the socket buffers: the writer blocks
        for i in range(12):  # each commit returns although nobody reads the stream
            rig.run(lambda b, i=i: b.emit(EventType.METRICS, {"n": i, "pad": big}))
        assert stream.dropped_total == 1
        ours.settimeout(10)
        data = b""
        while not data.endswith(b"\n") or b'"dropped"' not in data.rsplit(b"\n", 2)[-2]:
            chunk = ours.recv(65536)
            assert chunk, "stream closed without saying it dropped us"
            data += chunk
        lines = [json.loads(x) for x in data.splitlines()]
        assert lines[0] == {"kind": "status", "status": {"booth": "b"}}
        assert lines[-1] == {"kind": "dropped", "reason": "behind"}
        got = [m["event"]["data"]["n"] for m in lines if m["kind"] == "event"]
        assert got == list(range(len(got))) and len(got) < 12  # in order, the rest let go
        server.join(5)
        assert stream.subscribers == 0
        stop.set()
        ours.close()
        theirs.close()
        rig.run(lambda b: b.emit(EventType.METRICS, {}))  # nobody left: nothing to do


def test_the_client_says_when_the_daemon_is_gone(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="no daemon socket"):
        subscribe(tmp_path)
