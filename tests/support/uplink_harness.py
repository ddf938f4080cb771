"""A booth without devices (store, outbox, state thread, uplink) and a centre-side subscriber,
both against the ``tests.support.mosquitto.Broker``."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gated.config import BoothConfig, GatedConfig, MqttConfig, SiteConfig, TlsConfig
from gated.state.events import EventType
from gated.state.loop import Batch
from tests.support.mosquitto import CENTRE_USER, Broker
from tests.support.state_rig import StateRig

SITE = "s1"
BOOTH = "east-gate"
BOOTH_PW = "booth-pw"


def booth_config(broker: Broker, state_dir: Path, *, password: str = BOOTH_PW,
                 tls: bool = False, ca: Path | None = None, client_cert: bool = True,
                 **mqtt_kw: Any) -> GatedConfig:
    secrets = state_dir.parent / f"{state_dir.name}-secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    (secrets / "user").write_text(f"{BOOTH}\n")
    (secrets / "pass").write_text(f"{password}\n")
    tls_cfg = None
    if tls:
        assert broker.certs is not None
        c = broker.certs
        tls_cfg = TlsConfig(ca_file=ca or c.ca, cert_file=c.client_cert if client_cert else None,
                            key_file=c.client_key if client_cert else None)
    defaults: dict[str, Any] = dict(host="127.0.0.1", port=broker.tls_port if tls else broker.port,
                                    username_file=secrets / "user",
                                    password_file=secrets / "pass", tls=tls_cfg,
                                    reconnect_min_s=0.05, reconnect_max_s=0.5,
                                    replay_rate=20000.0, replay_burst=500,
                                    status_interval_s=5.0, metrics_interval_s=3600.0)
    defaults.update(mqtt_kw)
    return GatedConfig(site=SiteConfig(id=SITE, key_file=secrets / "site.key"),
                       booth=BoothConfig(id=BOOTH), state_dir=state_dir,
                       mqtt=MqttConfig(**defaults))


def ticket_payload(i: int) -> dict[str, Any]:
    """A ``ticket.issued`` as the booth writes one, for producers outside this process (the
    contract tap checks what they publish; in-process stand-ins may be anything)."""
    return {"ticket_id": f"T{i:08d}", "number": f"A{i % 1000:03d}", "service": "general",
            "priority": False, "priority_reason": None, "state": "waiting", "counter": None,
            "recalls": 0, "ahead": 0, "wait_min": 0.0, "visitor": "walk_in",
            "appointment_ref": None}


class Booth(StateRig):
    """Store + outbox + state thread under the uplink tests' site and booth ids; ``uplink`` is
    started by the test."""

    def __init__(self, state_dir: Path, extra_hooks: list[Any] | None = None) -> None:
        super().__init__(state_dir, extra_hooks or [], site=SITE, booth=BOOTH)

    def emit(self, n: int, type_: EventType = EventType.TICKET_ISSUED,
             payload: Callable[[int], dict[str, Any]] | None = None) -> list[tuple[int, str]]:
        def job(b: Batch) -> list[tuple[int, str]]:
            out = []
            for i in range(n):
                ev = b.emit(type_, payload(i) if payload else {"i": i})
                out.append((ev.seq, ev.id))
            return out
        result: list[tuple[int, str]] = self.loop.call(job).result(timeout=30)
        return result


@dataclass
class Received:
    topic: str
    body: dict[str, Any]
    lane: str | None
    retain: bool
    correlation: bytes | None = None


@dataclass
class Centre:
    """The county side: a persistent QoS 1 subscriber that records everything in order."""

    broker: Broker
    client_id: str = "centre-test"
    topics: tuple[str, ...] = ("gated/#",)
    messages: list[Received] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> Centre:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, self.client_id, protocol=mqtt.MQTTv5)
        c.username_pw_set(CENTRE_USER, self.broker.users[CENTRE_USER])
        c.reconnect_delay_set(0.05, 0.5)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect_async("127.0.0.1", self.broker.port, 30, clean_start=False, properties=props)
        c.loop_start()
        self.client = c
        self.wait_for(lambda: getattr(self, "_subscribed", False), 10)
        return self

    def _on_connect(self, c: mqtt.Client, u: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            c.subscribe([(t, 1) for t in self.topics])
            self._subscribed = True

    def _on_message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
        except (ValueError, RecursionError):  # its own bad commands come back here too
            body = {"_raw": msg.payload[:200].decode(errors="replace")}
        if not isinstance(body, dict):
            body = {"_raw": repr(body)[:200]}
        lane = None
        props = getattr(msg, "properties", None)
        for k, v in getattr(props, "UserProperty", None) or []:
            if k == "lane":
                lane = v
        with self.cond:
            corr = getattr(props, "CorrelationData", None)
            self.messages.append(Received(msg.topic, body, lane, bool(msg.retain),
                                          bytes(corr) if corr is not None else None))
            self.cond.notify_all()

    def events(self) -> list[Received]:
        with self.cond:
            return [m for m in self.messages if "/events/" in m.topic]

    def wait_for(self, pred: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.1))
        return True

    def publish(self, topic: str, payload: bytes, properties: Properties | None = None) -> None:
        self.client.publish(topic, payload, qos=1, properties=properties).wait_for_publish(5)

    def command(self, root: str, name: str, payload: bytes = b'{"args": {}}', *,
                v5_reply: bool = True, timeout: float = 15) -> dict[str, Any]:
        """Publish ``cmd/<name>`` under ``root`` and return the booth's reply (a v5 response
        topic with correlation data, or the v3.1.1 fallback ``reply/<name>``)."""
        corr = uuid.uuid4().hex
        reply_topic = f"{root}/reply/rr-{corr}"
        props = None
        if v5_reply:
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = reply_topic
            props.CorrelationData = corr.encode()
        with self.cond:
            n = len(self.messages)
        self.publish(f"{root}/cmd/{name}", payload, properties=props)
        want = reply_topic if v5_reply else f"{root}/reply/{name}"
        assert self.wait_for(lambda: any(m.topic == want for m in self.messages[n:]), timeout), \
            f"no reply to {name}"
        return next(m.body for m in self.messages[n:] if m.topic == want)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def check_order(events: list[Received]) -> tuple[int, int]:
    """Per lane, each id seen for the first time has a higher seq than the lane's last new
    id. Returns (unique ids, duplicates)."""
    seen: set[str] = set()
    last: dict[str | None, int] = {}
    dups = 0
    for m in events:
        eid, seq = m.body["id"], m.body["seq"]
        if m.lane == "retry":  # a refused message retried out of line, by design
            seen.add(eid)
            continue
        if eid in seen:
            dups += 1
            continue
        seen.add(eid)
        assert seq > last.get(m.lane, 0), f"seq {seq} after {last.get(m.lane)} in lane {m.lane}"
        last[m.lane] = seq
    return len(seen), dups
