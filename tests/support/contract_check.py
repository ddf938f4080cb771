"""Everything the test suite makes the booth produce is checked against the MQTT contract
(``gated/wire/asyncapi.yaml``, through ``gated.wire.contract``).

Where it is checked (``install`` patches these for the whole session):

- ``Outbox.append``: every event the outbox stores, as the JSON it stores;
- ``Rpc._reply``: every reply to an MQTT command; ``CommandRegistry.dispatch``: every reply
  to a local one (control socket, ``gated ctl``);
- paho's ``Client.publish`` and ``Client.will_set``: every status, will, ``sync_ack`` and
  ``sync_request`` a booth in this process publishes;
- a tap on every test broker (``Broker.start`` attaches one): everything booths in other
  processes (``gated run``, ``gated simulate``) publish on the booth's up topics. Whatever this
  process published itself is recognised by a digest and left to the checks above.

What is not checked: payloads a test made up. A test that emits ``{"i": 1}`` as a
``ticket.issued`` to exercise the pipe (order, replay, eviction) is not producing the
contract; an event counts as the booth's when the frame that emitted it is in ``gated/`` (not
in ``tests/`` or ``bench/``), and a reply as the booth's unless a test registered the handler
that succeeded. These are counted as ``fabricated`` in the report.

Violations are collected, deduplicated, and fail the run (``tests/conftest.py``), with a
report of what was wrong where.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gated.wire import contract

ROOT = Path(__file__).resolve().parents[2]
_GATED = str(ROOT / "gated") + "/"
_TESTS = (str(ROOT / "tests") + "/", str(ROOT / "bench") + "/")
_DIGESTS_MAX = 500_000
UP = ("status", "events", "reply", "sync_ack", "sync_request")


@dataclass
class Violation:
    kind: str
    name: str
    where: str
    problems: tuple[str, ...]
    count: int = 1
    sample: str = ""


@dataclass
class Recorder:
    """What was checked, what was made up by tests, and what was wrong."""

    checked: Counter[str] = field(default_factory=Counter)
    fabricated: Counter[str] = field(default_factory=Counter)
    violations: dict[tuple[str, str, tuple[str, ...]], Violation] = field(default_factory=dict)
    _ours: OrderedDict[bytes, int] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, kind: str, name: str, payload: object, where: str) -> list[str]:
        found = _CHECKS[kind](name, payload)
        with self._lock:
            self.checked[kind] += 1
            if found:
                key = (kind, name, tuple(found))
                if key in self.violations:
                    self.violations[key].count += 1
                else:
                    self.violations[key] = Violation(kind, name, where, tuple(found),
                                                     sample=_sample(payload))
        return found

    def published_here(self, topic: str, payload: object) -> None:
        d = _digest(topic, payload)
        with self._lock:
            self._ours[d] = self._ours.get(d, 0) + 1
            while len(self._ours) > _DIGESTS_MAX:
                self._ours.popitem(last=False)

    def is_ours(self, topic: str, payload: bytes) -> bool:
        d = _digest(topic, payload)
        with self._lock:
            return d in self._ours

    def report(self) -> str:
        lines = [f"{sum(v.count for v in self.violations.values())} payload(s) the suite "
                 f"produced do not match gated/wire/asyncapi.yaml:"]
        for v in self.violations.values():
            lines.append(f"- {v.kind} {v.name} ({v.count}x, {v.where}):")
            lines += [f"    {p}" for p in v.problems]
            lines.append(f"    e.g. {v.sample}")
        return "\n".join(lines)

    def summary(self) -> str:
        return (f"contract: checked {dict(sorted(self.checked.items()))}, "
                f"made up by tests (not checked) {dict(sorted(self.fabricated.items()))}, "
                f"{len(self.violations)} distinct violation(s)")


ACTIVE: Recorder | None = None


def _event(name: str, payload: object) -> list[str]:
    return contract.event_problems(payload)


def _status(name: str, payload: object) -> list[str]:
    return contract.status_problems(payload)


def _sync_ack(name: str, payload: object) -> list[str]:
    return contract.sync_ack_problems(payload)


def _sync_request(name: str, payload: object) -> list[str]:
    return contract.sync_request_problems(payload)


_CHECKS: dict[str, Callable[[str, object], list[str]]] = {
    "event": _event, "status": _status, "reply": contract.reply_problems,
    "sync_ack": _sync_ack, "sync_request": _sync_request,
}


def _digest(topic: str, payload: object) -> bytes:
    if payload is None:
        raw = b""
    elif isinstance(payload, str):
        raw = payload.encode()
    elif isinstance(payload, bytes | bytearray | memoryview):
        raw = bytes(payload)
    else:
        raw = str(payload).encode()
    return hashlib.sha1(topic.encode() + b"\0" + raw).digest()


def _sample(payload: object) -> str:
    text = json.dumps(payload, ensure_ascii=False, default=str)
    return text if len(text) <= 300 else text[:300] + "..."


def _file(frame: FrameType | None) -> str:
    return frame.f_code.co_filename if frame is not None else ""


def _made_by_tests(path: str) -> bool:
    return path.startswith(_TESTS)


def _emitter(frame: FrameType | None) -> str:
    """The file of the code that emitted an event: the caller of ``Batch.emit`` (or of
    ``Outbox.append`` when called directly)."""
    if frame is not None and frame.f_code.co_name == "emit" and \
            frame.f_code.co_filename.endswith("gated/state/loop.py"):
        frame = frame.f_back
    return _file(frame)


def _topic_kind(topic: str) -> tuple[str, str] | None:
    """("status" | "events" | ..., the last level) for a booth's up topic, else None."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != "gated" or parts[1] != "v1" or parts[3] == "_site":
        return None
    return (parts[4], parts[-1]) if parts[4] in UP else None


def _decode(payload: object) -> object:
    try:
        return json.loads(payload if isinstance(payload, str | bytes | bytearray) else b"")
    except ValueError:
        return {"_not_json": True}


def _handler_is_a_tests(registry: Any, name: str) -> bool:
    cmd = getattr(registry, "_commands", {}).get(name)
    fn = getattr(cmd, "handler", None)
    code = getattr(fn, "__code__", None)
    return code is not None and _made_by_tests(code.co_filename)


def _check_reply(registry: Any, name: str, body: dict[str, Any], where: str) -> None:
    rec = ACTIVE
    if rec is None:
        return
    if body.get("ok") is True and _handler_is_a_tests(registry, name):
        rec.fabricated["reply"] += 1
        return
    rec.check("reply", name, body, where)


def install() -> Callable[[], None]:
    """Patch the points listed in the module docstring; returns the undo."""
    from gated.commands.registry import LOCAL, CommandRegistry
    from gated.state.outbox import Outbox
    from gated.uplink.rpc import Rpc

    undo: list[tuple[object, str, object]] = []

    def patch(owner: object, name: str, new: object) -> None:
        undo.append((owner, name, getattr(owner, name)))
        setattr(owner, name, new)

    orig_append = Outbox.append

    def append(self: Outbox, event: Any) -> Any:
        out = orig_append(self, event)
        rec = ACTIVE
        if rec is not None:
            path = _emitter(sys._getframe(1))
            if _made_by_tests(path):
                rec.fabricated["event"] += 1
            else:
                body = json.loads(event.to_json_bytes(self.site, self.booth,
                                                      self.session.number))
                rec.check("event", str(event.type), body, f"stored, emitted in {_short(path)}")
        return out
    patch(Outbox, "append", append)

    orig_reply = Rpc._reply

    def reply(self: Rpc, msg: Any, name: str, result: dict[str, Any]) -> None:
        _check_reply(self.registry, name, {"command": name, **result}, "MQTT reply")
        orig_reply(self, msg, name, result)
    patch(Rpc, "_reply", reply)

    orig_dispatch = CommandRegistry.dispatch

    def dispatch(self: CommandRegistry, name: str, raw: bytes, *, source: str,
                 actor: dict[str, str] | None = None) -> dict[str, Any]:
        out = orig_dispatch(self, name, raw, source=source, actor=actor)
        if source == LOCAL:
            _check_reply(self, name, out, "local reply")
        return out
    patch(CommandRegistry, "dispatch", dispatch)

    orig_publish = mqtt.Client.publish

    def publish(self: mqtt.Client, topic: str, payload: Any = None, qos: int = 0,
                retain: bool = False, properties: Any = None) -> mqtt.MQTTMessageInfo:
        rec = ACTIVE
        if rec is not None:
            rec.published_here(topic, payload)
            kind = _topic_kind(topic)
            caller = _file(sys._getframe(1))
            if kind and kind[0] in ("status", "sync_ack", "sync_request") \
                    and caller.startswith(_GATED):
                rec.check(kind[0], kind[1], _decode(payload), f"published by {_short(caller)}")
        return orig_publish(self, topic, payload, qos, retain, properties)
    patch(mqtt.Client, "publish", publish)

    orig_will = mqtt.Client.will_set

    def will_set(self: mqtt.Client, topic: str, payload: Any = None, qos: int = 0,
                 retain: bool = False, properties: Any = None) -> None:
        rec = ACTIVE
        if rec is not None:
            rec.published_here(topic, payload)
            caller = _file(sys._getframe(1))
            if _topic_kind(topic) is not None and caller.startswith(_GATED):
                rec.check("status", "will", _decode(payload), f"will of {_short(caller)}")
        orig_will(self, topic, payload, qos, retain, properties)
    patch(mqtt.Client, "will_set", will_set)

    def restore() -> None:
        for owner, name, old in reversed(undo):
            setattr(owner, name, old)
    return restore


def _short(path: str) -> str:
    return path[len(str(ROOT)) + 1:] if path.startswith(str(ROOT)) else path


class Tap:
    """A subscriber on one test broker: checks what booths of other processes publish."""

    def __init__(self, port: int, user: str, password: str, recorder: Recorder) -> None:
        self.recorder = recorder
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, f"contract-tap-{port}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.05, 0.5)
        self.client.connect_async("127.0.0.1", port, 30)
        self.client.loop_start()

    def wait_ready(self, timeout: float = 5.0) -> bool:
        return self._ready.wait(timeout)

    def _on_connect(self, c: mqtt.Client, u: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            c.subscribe("gated/#", qos=1)

    def _on_message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        kind = _topic_kind(msg.topic)
        if kind is None or self.recorder.is_ours(msg.topic, msg.payload):
            return
        body = _decode(msg.payload)
        where = f"on the broker, {msg.topic}"
        if kind[0] == "events":
            self.recorder.check("event", kind[1], body, where)
        elif kind[0] == "reply":
            name = body.get("command") if isinstance(body, dict) else None
            self.recorder.check("reply", str(name or kind[1]), body, where)
        else:
            self.recorder.check(kind[0], kind[1], body, where)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def attach_tap(port: int, user: str, password: str) -> Tap | None:
    """A tap for a broker that just started, when a session recorder is active."""
    rec = ACTIVE
    if rec is None:
        return None
    tap = Tap(port, user, password, rec)
    if not tap.wait_ready():
        tap.stop()
        raise RuntimeError(f"the contract tap could not subscribe on port {port}")
    return tap
