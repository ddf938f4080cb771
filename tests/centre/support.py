"""The centre's test plumbing: a centre config for a test broker and database, an ingest
worker as a real ``gated centre ingest`` process (so it can be killed with SIGKILL), and
booth envelopes built by the booth's own ``Event`` class."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gated.state.events import Event, EventType, new_event_id
from tests.support.mosquitto import CENTRE_USER, Broker

ROOT = Path(__file__).resolve().parents[2]


def centre_config(tmp: Path, broker: Broker, dsn: str, *, extra: str = "",
                  command_key: Path | None = None, group: str = "centre-ingest") -> Path:
    pw = tmp / "centre.pw"
    pw.write_text(broker.users[CENTRE_USER] + "\n")
    key = f'command_key_file = "{command_key}"\n' if command_key else ""
    path = tmp / "centre.toml"
    path.write_text(f"""[centre]
dsn = "{dsn}"
timezone = "Asia/Shanghai"
[centre.mqtt]
group = "{group}"
host = "127.0.0.1"
port = {broker.port}
username = "{CENTRE_USER}"
password_file = "{pw}"
{key}[centre.ingest]
batch_wait_ms = 20
sequence_interval_s = 0.2
{extra}""", encoding="utf-8")
    return path


class IngestProcess:
    """``gated centre -c CFG ingest --name NAME`` in its own process; its log in ``log_path``."""

    def __init__(self, config: Path, name: str, workdir: Path) -> None:
        self.config, self.name = config, name
        self.log_path = workdir / f"ingest-{name}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> IngestProcess:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gated.app.cli", "centre", "-c", str(self.config), "ingest",
             "--name", self.name], cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None
        self._log.close()

    def terminate(self, timeout: float = 20) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        self._log.close()
        return code

    def log_events(self, event: str) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("event") == event:
                out.append(doc)
        return out

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        if self.proc is not None:
            self.kill()

    def __enter__(self) -> IngestProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until(pred: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(every)
    return pred()


def scalar(conn: Any, sql: str, *args: Any) -> Any:
    row = conn.execute(sql, args).fetchone()
    return row[0] if row else None


def ticket_data(i: int) -> dict[str, Any]:
    """A ``ticket.issued`` payload as the booth emits it (valid under the contract)."""
    return {"ticket_id": new_event_id(), "number": f"A{i % 1000:03d}", "service": "social",
            "priority": False, "priority_reason": None, "state": "waiting", "counter": None,
            "recalls": 0, "ahead": 0, "wait_min": 0.0, "visitor": "walk_in",
            "appointment_ref": None}


def envelope(site: str, booth: str, seq: int, etype: EventType = EventType.TICKET_ISSUED,
             data: dict[str, Any] | None = None,
             over: dict[str, Any] | None = None, session: int = 1) -> dict[str, Any]:
    """What a booth publishes for its event number ``seq`` (``Event.envelope``; a valid
    ``ticket.issued`` unless ``data`` is given), with the fields in ``over`` replaced."""
    e = Event.make(etype, data if data is not None else ticket_data(seq))
    doc = Event(type=e.type, payload=e.payload, priority=e.priority, id=e.id, ts=e.ts,
                seq=seq).envelope(site, booth, session)
    doc.update(over or {})
    return doc


class BoothClient:
    """A booth's MQTT login that publishes raw payloads (for rogue and broken booths)."""

    def __init__(self, broker: Broker, user: str, protocol: int = mqtt.MQTTv5) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, f"raw-{user}-{time.time_ns()}",
                                  protocol=protocol)
        self.client.username_pw_set(user, broker.users[user])
        self.client.connect("127.0.0.1", broker.port, 30)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | dict[str, Any]) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, body, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
