"""Commands from the centre and list sync, handled on a worker thread, never on paho's.

Commands: ``<root>/cmd/<name>``. The reply goes to the MQTT 5 response topic with the request's
correlation data; without one (MQTT 3.1.1, or a v5 client that set none) it goes to
``<root>/reply/<name>`` and echoes the request's JSON ``correlation`` field. Every command gets
exactly one reply, also when it is too large, arrives while the worker is full, or fails.

A response topic must lie under ``<root>/reply/`` (no wildcards). The recommended ACL lets a
booth publish only under its own root, so a reply sent anywhere else would be refused by the
broker and vanish; and a booth that published wherever a request asked would let anyone who
may command it write on topics of other booths. Such a command is not run: it is refused as
``bad_response_topic`` on ``<root>/reply/<name>`` (with the correlation data, and the topic
asked for) and audited as a ``security`` event.

Lists: ``<root>/sync/<list>`` (this booth) and ``gated/v1/<site>/_site/sync/<list>`` (every
booth of the site) carry JSON snapshots (``"op": "snapshot"``, chunked with ``chunk``/``chunks``
when large) or deltas (``"op": "delta"``). Each is applied on the state thread in one item with
a ``list.sync`` event; a bad one raises there, so the whole item rolls back and the old list
stays. The outcome is published on ``<root>/sync_ack/<list>``; a delta that does not follow the
booth's version publishes a snapshot request on ``<root>/sync_request/<list>``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from typing import Any, Protocol

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from drivers.threads import named_thread
from gated.booth import ListError, ListKind, SnapshotAssembler, parse_snapshot, report_refused
from gated.config import MqttConfig
from gated.state import StateLoop
from gated.uplink.connection import Connection
from gated.wire import PayloadError, loads_object

log = structlog.get_logger(__name__)

QUEUE_MAX = 64
APPLY_TIMEOUT_S = 30.0
MAX_SYNC_BYTES = 8 * 1024 * 1024


class Registry(Protocol):
    def dispatch(self, name: str, raw: bytes, *, source: str) -> dict[str, Any]: ...

    def refuse(self, name: str, source: str, reason: str, message: str) -> dict[str, Any]: ...


class SyncRefused(Exception):
    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


class Rpc:
    """One worker thread for commands and list messages, in arrival order."""

    def __init__(self, cfg: MqttConfig, connection: Connection, registry: Registry | None,
                 lists: Any, loop: StateLoop) -> None:
        self.cfg = cfg
        self.connection = connection
        self.registry = registry
        self.lists = lists
        self.loop = loop
        self.topics = connection.topics
        self._q: queue.Queue[mqtt.MQTTMessage | None] = queue.Queue(QUEUE_MAX)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._assembler = SnapshotAssembler(timeout_s=cfg.sync_chunk_timeout_s)
        self.commands_handled = 0
        self.sync_applied = 0
        self.sync_rejected = 0

    def start(self) -> None:
        self._stopping.clear()
        self._thread = named_thread(self._run, "gated-mqtt-rpc")
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()  # the worker checks it between messages: no put on a full queue
        with contextlib.suppress(queue.Full):
            self._q.put_nowait(None)
        if thread is not threading.current_thread():
            thread.join(APPLY_TIMEOUT_S)

    # ------------------------------------------------------------------ paho thread
    def on_message(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        """Enqueue only. A full worker answers a command with ``busy`` at once."""
        try:
            self._q.put_nowait(msg)
        except queue.Full:
            name = msg.topic.rsplit("/", 1)[-1]
            if "/cmd/" in msg.topic:
                self._reply(msg, name, {"ok": False, "reason": "busy",
                                        "message": "command queue full, try again"})
            else:  # acked at once, like a busy command: the centre sends it again later
                kind = msg.topic.rsplit("/", 1)[-1]
                log.warning("sync_dropped_busy", topic=msg.topic)
                self._publish(self.topics.sync_ack(kind[:64]), {
                    "list": kind[:64], "version": None, "ok": False, "reason": "busy",
                    "message": "list queue full, send again later"})

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while not self._stopping.is_set():
            self._report_incomplete()
            due = self._assembler.next_expiry()
            try:
                msg = self._q.get(timeout=None if due is None else
                                  max(0.01, due - time.monotonic()))
            except queue.Empty:
                continue
            if msg is None:
                return
            try:
                if "/cmd/" in msg.topic:
                    self._command(msg)
                elif "/sync/" in msg.topic:
                    self._sync(msg)
            except Exception as e:  # the worker must outlive any one message
                log.exception("rpc_failed", topic=msg.topic, error=repr(e))

    def _command(self, msg: mqtt.MQTTMessage) -> None:
        name = msg.topic.rsplit("/", 1)[-1]
        raw = bytes(msg.payload)
        asked = self._response_topic(msg)
        if asked is not None and not self._own_reply_topic(asked):
            message = (f"response topic {asked[:120]!r} is not under {self.topics.reply('')!r}"
                       "; the command was not run")
            result: dict[str, Any] = (
                self.registry.refuse(name, "mqtt", "bad_response_topic", message)
                if self.registry is not None else
                {"ok": False, "reason": "bad_response_topic", "message": message})
            self.commands_handled += 1
            log.warning("mqtt_command", command=name, ok=False, reason="bad_response_topic")
            self._reply(msg, name, {**result, "response_topic": asked[:200]})
            return
        if self.registry is None:
            result = {"ok": False, "reason": "unavailable", "message": "no command registry"}
        else:
            try:
                result = dict(self.registry.dispatch(name, raw, source="mqtt"))
            except Exception as e:  # dispatch promises not to raise; a reply is owed anyway
                log.exception("command_dispatch_raised", command=name, error=repr(e))
                result = {"ok": False, "reason": "internal_error", "message": type(e).__name__}
        self.commands_handled += 1
        log.info("mqtt_command", command=name, ok=result.get("ok"), reason=result.get("reason"))
        self._reply(msg, name, result)

    @staticmethod
    def _response_topic(msg: mqtt.MQTTMessage) -> str | None:
        props = getattr(msg, "properties", None)
        topic = getattr(props, "ResponseTopic", None) if props is not None else None
        return topic if isinstance(topic, str) and topic else None

    def _own_reply_topic(self, topic: str) -> bool:
        prefix = self.topics.reply("")
        return (topic.startswith(prefix) and len(topic) > len(prefix)
                and not any(c in topic for c in "#+\0"))

    def _reply(self, msg: mqtt.MQTTMessage, name: str, result: dict[str, Any]) -> None:
        """Publish the reply: on the request's response topic when it is one of ours, else on
        ``reply/<name>``; MQTT 5 correlation data is echoed either way."""
        props_in = getattr(msg, "properties", None)
        topic = self._response_topic(msg)
        if topic is not None and not self._own_reply_topic(topic):
            topic = None
        corr = getattr(props_in, "CorrelationData", None) if props_in is not None else None
        body: dict[str, Any] = {"command": name, **result}
        if not topic:
            topic = self.topics.reply(name)
            json_corr = _json_field(msg.payload, "correlation")
            if json_corr is not None:
                body["correlation"] = json_corr
        props = None
        if self.connection.is_v5 and corr is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.CorrelationData = corr
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
        if self.connection.publish(topic, payload.encode(), qos=1, properties=props) is None:
            log.warning("command_reply_not_sent", command=name, reason="not connected")

    # ------------------------------------------------------------------ lists
    def _sync(self, msg: mqtt.MQTTMessage) -> None:
        kind = msg.topic.rsplit("/", 1)[-1]
        version: Any = None
        try:
            if len(msg.payload) > MAX_SYNC_BYTES:
                raise SyncRefused("too_large", f"list message over {MAX_SYNC_BYTES} bytes")
            try:
                doc = loads_object(msg.payload)
            except PayloadError as e:  # empty, not JSON, too deep, numbers out of range
                raise SyncRefused(e.reason, str(e)) from None
            version = doc.get("version")
            doc.setdefault("list", kind)
            if doc["list"] != kind:
                raise SyncRefused("malformed", "list name differs from the topic")
            try:
                lk = ListKind(kind)
            except ValueError:
                raise SyncRefused("unknown_list", f"unknown list {kind!r}") from None
            op = doc.get("op")
            if op == "snapshot":
                try:
                    if "chunks" in doc:
                        self._report_incomplete()  # an older, stale one first
                        whole = self._assembler.add(doc)
                        if whole is None:
                            return  # waiting for more chunks
                    else:
                        whole = parse_snapshot(doc)
                except ListError as e:
                    raise SyncRefused(e.reason, str(e)) from None
                _, ver, entries, checksum = whole
                self._apply(kind, ver, "snapshot",
                            lambda: self.lists.apply_snapshot(lk, ver, entries, checksum),
                            entries=len(entries))
            elif op == "delta":
                ups, dels = doc.get("upserts", []), doc.get("deletes", [])
                base, csum = doc.get("base_version"), doc.get("checksum")
                if not isinstance(ups, list) or not isinstance(dels, list):
                    raise SyncRefused("malformed", "upserts and deletes must be lists")
                if not (_is_int(base) and _is_int(version) and isinstance(csum, str)):
                    raise SyncRefused("malformed", "base_version, version and checksum needed")
                self._apply(kind, version, "delta",
                            lambda: self.lists.apply_delta(lk, base, version, ups, dels, csum),
                            entries=len(ups) + len(dels))
            else:
                raise SyncRefused("malformed", "op must be snapshot or delta")
        except SyncRefused as e:
            self._rejected(kind, version, e.reason, str(e))

    def _apply(self, kind: str, version: Any, op: str, apply: Any, *, entries: int) -> None:
        job = partial(self.lists.apply_in, change=apply, kind=kind, version=version,
                      entries=entries, source="mqtt", op=op)
        try:
            refused = self.loop.call_wait(job, timeout=APPLY_TIMEOUT_S)
        except FutureTimeout:
            self._rejected(kind, version, "busy", "state thread did not answer")
            return
        except (ValueError, TypeError, KeyError) as e:  # raised on the state thread, rolled back
            self._rejected(kind, version, _reason(e), str(e))
            return
        if refused is not None:  # its list.sync event is already in the outbox
            self._rejected(kind, version, refused.reason, str(refused), reported=True)
            return
        self.sync_applied += 1
        log.info("list_applied", list=kind, version=version, op=op, entries=entries)
        self._publish(self.topics.sync_ack(kind), {"list": kind, "version": version,
                                                   "op": op, "ok": True})

    def _rejected(self, kind: str, version: Any, reason: str, message: str, *,
                  reported: bool = False) -> None:
        """Count, log and answer a refused list message; ``reported`` when its ``list.sync``
        event was emitted already (in the batch that refused it). A ``version`` that is not an
        integer (a malformed message) is reported as null, as the contract says."""
        self.sync_rejected += 1
        kind = kind[:64]
        version = version if _is_int(version) else None
        have = self._have(kind)
        log.warning("list_rejected", list=kind, version=version, reason=reason, have=have)
        if not reported:
            self.loop.post(partial(report_refused, kind=kind, version=version, reason=reason,
                                   source="mqtt"))
        self._publish(self.topics.sync_ack(kind), {"list": kind, "version": version,
                                                   "ok": False, "reason": reason,
                                                   "message": message[:200],
                                                   "have_version": have})
        if reason == "version_gap":
            self.request_snapshot(kind, reason)

    def _report_incomplete(self) -> None:
        """Chunked snapshots whose chunks did not all arrive in time: refused, and said so."""
        for late in self._assembler.expire():
            self._rejected(late.kind, late.version, "incomplete",
                           f"{late.received} of {late.chunks} chunks arrived within "
                           f"{self._assembler.timeout_s:g} s")

    def request_snapshot(self, kind: str, reason: str) -> None:
        """Ask the centre for a full snapshot of ``kind`` (command ``sync_lists``, or a gap)."""
        self._publish(self.topics.sync_request(kind), {"list": kind, "have_version":
                                                       self._have(kind), "reason": reason,
                                                       "want": "snapshot"})

    def _have(self, kind: str) -> Any:
        try:
            return dict(self.lists.versions()).get(kind)
        except (AttributeError, TypeError, ValueError):  # informative only
            return None

    def _publish(self, topic: str, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
        self.connection.publish(topic, data.encode(), qos=1)


def _reason(e: Exception) -> str:
    reason = getattr(e, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    return "bad_list"


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _json_field(payload: bytes | bytearray, key: str) -> Any:
    try:
        return loads_object(payload).get(key)
    except PayloadError:
        return None
