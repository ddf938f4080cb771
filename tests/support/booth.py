"""A simulated booth driven from outside: the ``gated`` CLI as a process, and a booth on a
fresh mosquitto with passwords plus a centre client, for tests that run ``gated run``."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from gated.app.simulate import SimBooth
from tests.support.mosquitto import Broker
from tests.support.uplink_harness import Centre


def gated(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gated.app.cli", *args], capture_output=True,
                          text=True, timeout=30)


def devices_ready(cfg: Path) -> bool:
    out = gated("status", "-c", str(cfg))
    if out.returncode:
        return False
    devices = json.loads(out.stdout)["status"]["devices"]
    return all(d["state"] == "ready" for d in devices.values())


ROOT = "gated/v1/demo-town/sim-booth"


@contextlib.contextmanager
def booth_with_broker(tmp_path: Path, extra_mqtt: str = "", *, denied_event: str | None =
                      "gate.inputs") -> Iterator[tuple[SimBooth, Broker]]:
    """A simulated booth whose ``[mqtt]`` points at a fresh mosquitto with passwords (plus
    ``extra_mqtt`` lines); the broker refuses ``denied_event`` (benchmarks pass None). The
    daemon is the caller's."""
    broker = Broker(tmp_path / "broker", users={"centre": "centre-pw", "sim-booth": "booth-pw"},
                    denied_event=denied_event)
    broker.start()
    for name, secret in (("user", "sim-booth\n"), ("pw", "booth-pw\n")):
        (tmp_path / name).write_text(secret)
        (tmp_path / name).chmod(0o600)  # gated check-config refuses secrets others can read
    try:
        with SimBooth(tmp_path / "sim", mqtt=f"127.0.0.1:{broker.port}") as sim:
            text = sim.config_path.read_text(encoding="utf-8")
            port_line = f"port = {broker.port}\n"
            sim.config_path.write_text(text.replace(port_line, port_line + (
                f'username_file = "{tmp_path / "user"}"\n'
                f'password_file = "{tmp_path / "pw"}"\n') + extra_mqtt), encoding="utf-8")
            yield sim, broker
    finally:
        broker.stop()


@contextlib.contextmanager
def booth_on_broker(tmp_path: Path, extra_mqtt: str = "") -> Iterator[tuple[SimBooth, Centre]]:
    """``booth_with_broker`` and a centre client on the same broker, recording everything."""
    with booth_with_broker(tmp_path, extra_mqtt) as (sim, broker):
        centre = Centre(broker, client_id=f"centre-{tmp_path.name[-20:]}").start()
        try:
            yield sim, centre
        finally:
            centre.stop()


def online_count(centre: Centre) -> int:
    return sum(1 for m in centre.messages if m.topic == f"{ROOT}/status" and m.body.get("online"))
