"""The centre desk's commands to booths: answer escalation and callback cases, push a list.

What a caller must know:
- Cases live on their booth: the centre never changes a case's state in its own tables. It
  sends the booth's own command (``escalation_ack``, ``escalation_close``, ``callback_ack``,
  ``callback_done``, ``callback_close``) on ``gated/v1/<site>/<booth>/cmd/<name>``, waits for
  the reply (MQTT 5 response topic under the booth's own subtree, which the broker's ACL lets
  the booth publish to), and the state changes in ``cases`` when the booth's event comes back
  through the ingest. Every command sent is written to ``desk_actions`` with its reply.
- Commands are signed with ``gated.commands.sign_command`` when ``mqtt.command_key_file`` is
  set (the booth checks signatures of the commands that need them and ignores them on the
  others), so a desk never depends on which commands a booth version insists on signing.
- A list snapshot is checked here first with the booth's own parser (every entry, the
  checksum), so the centre never publishes a list a booth would refuse; large ones go in
  chunks (``chunk``/``chunks``) below the broker's message size.
"""

from __future__ import annotations

import enum
import json
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gated.booth.lists import ListError, entries_checksum, parse_entry, parse_snapshot
from gated.centre.config import CentreConfig
from gated.centre.ingest import mqtt_client
from gated.commands import load_command_key, sign_command

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT_S = 10.0
CHUNK_BYTES = 48 * 1024  # under mosquitto's usual message_size_limit with room to spare


class CaseAction(enum.StrEnum):
    ACK = "ack"
    CALLED_BACK = "called_back"
    CLOSE = "close"


#: (case kind, action) -> the booth's command
COMMANDS: dict[tuple[str, CaseAction], str] = {
    ("escalation", CaseAction.ACK): "escalation_ack",
    ("escalation", CaseAction.CLOSE): "escalation_close",
    ("callback", CaseAction.ACK): "callback_ack",
    ("callback", CaseAction.CALLED_BACK): "callback_done",
    ("callback", CaseAction.CLOSE): "callback_close",
}


class DeskError(Exception):
    """A desk command that could not be sent or was not answered; ``str()`` says why."""


@dataclass
class _Replies:
    cond: threading.Condition = field(default_factory=threading.Condition)
    got: dict[str, dict[str, Any]] = field(default_factory=dict)
    acks: list[dict[str, Any]] = field(default_factory=list)


class Desk:
    """One MQTT connection for a few desk commands; use as a context manager."""

    def __init__(self, cfg: CentreConfig, actor: str) -> None:
        self.cfg = cfg
        self.actor = actor[:64]
        self.key = load_command_key(cfg.mqtt.command_key_file)
        self._r = _Replies()
        self._client = mqtt_client(cfg, f"gated-desk-{uuid.uuid4().hex[:12]}", manual_ack=False)
        self._client.on_message = self._on_message
        self._ready = threading.Event()
        self._client.on_connect = lambda c, u, f, rc, p: (
            self._ready.set() if not rc.is_failure else log.error("desk_refused", rc=str(rc)))

    def __enter__(self) -> Desk:
        try:
            self._client.connect(self.cfg.mqtt.host, self.cfg.mqtt.port, 30)
        except OSError as e:
            raise DeskError(f"cannot reach the broker {self.cfg.mqtt.host}:"
                            f"{self.cfg.mqtt.port}: {e}") from None
        self._client.loop_start()
        if not self._ready.wait(CONNECT_TIMEOUT_S):
            self.__exit__()
            raise DeskError("the broker did not accept the desk's connection")
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        corr = getattr(msg.properties, "CorrelationData", None)
        with self._r.cond:
            if corr:
                self._r.got[bytes(corr).decode(errors="replace")] = body
            elif "/sync_ack/" in msg.topic:
                self._r.acks.append({"topic": msg.topic, **body})
            self._r.cond.notify_all()

    def _subscribe(self, topic: str) -> None:
        result, mid = self._client.subscribe(topic, qos=1)
        if result != mqtt.MQTT_ERR_SUCCESS:
            raise DeskError(f"cannot subscribe to {topic}")

    def command(self, site: str, booth: str, name: str, args: dict[str, Any],
                timeout: float = 15.0) -> dict[str, Any]:
        """Send one command and return the booth's reply; ``DeskError`` when none came."""
        corr = uuid.uuid4().hex
        root = f"gated/v1/{site}/{booth}"
        reply_topic = f"{root}/reply/desk-{corr}"
        self._subscribe(reply_topic)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = reply_topic
        props.CorrelationData = corr.encode()
        body = (sign_command(self.key, name, args) if self.key is not None
                else json.dumps({"args": args}).encode())
        info = self._client.publish(f"{root}/cmd/{name}", body, qos=1, properties=props)
        info.wait_for_publish(timeout)
        with self._r.cond:
            self._r.cond.wait_for(lambda: corr in self._r.got, timeout)
            reply = self._r.got.pop(corr, None)
        self._client.unsubscribe(reply_topic)
        if reply is None:
            raise DeskError(f"{site}/{booth} did not answer {name} within {timeout:g} s "
                            "(offline? the command waits in its session)")
        return reply

    # ------------------------------------------------------------------ lists
    def publish_list(self, doc: dict[str, Any], site: str, booth: str | None,
                     wait_s: float = 0.0) -> tuple[int, list[dict[str, Any]]]:
        """Publish a snapshot to one booth or (``booth`` None) every booth of the site;
        returns the messages sent and the booths' ``sync_ack`` answers within ``wait_s``."""
        kind, version, entries, checksum = check_snapshot(doc)
        target = booth or "_site"
        topic = f"gated/v1/{site}/{target}/sync/{kind}"
        if wait_s > 0:
            self._subscribe(f"gated/v1/{site}/{booth or '+'}/sync_ack/{kind}")
        parts = _chunks(entries)
        for i, part in enumerate(parts):
            msg: dict[str, Any] = {"op": "snapshot", "list": kind, "version": version,
                                   "checksum": checksum, "entries": part}
            if len(parts) > 1:
                msg.update(chunk=i, chunks=len(parts))
            payload = json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode()
            self._client.publish(topic, payload, qos=1).wait_for_publish(30)
        acks: list[dict[str, Any]] = []
        if wait_s > 0:
            with self._r.cond:
                self._r.cond.wait_for(lambda: booth is not None and bool(self._r.acks), wait_s)
                acks = list(self._r.acks)
        return len(parts), acks


def check_snapshot(doc: object) -> tuple[str, int, list[dict[str, Any]], str]:
    """The booth's checks, before anything is sent: a known list, a version, every entry
    valid; the checksum is computed when the file has none and must match when it has one."""
    if isinstance(doc, dict) and "checksum" not in doc:
        doc = {**doc, "checksum": entries_checksum(doc.get("entries") or [])}
    try:
        kind, version, entries, checksum = parse_snapshot(doc)
        for i, e in enumerate(entries):
            parse_entry(kind, e, i)
    except ListError as e:
        raise DeskError(f"list refused before sending: {e}") from None
    if entries_checksum(entries) != checksum:
        raise DeskError("list refused before sending: bad_checksum (the file's checksum does "
                        "not match its entries)")
    return str(kind), version, entries, checksum


def _chunks(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    parts: list[list[dict[str, Any]]] = [[]]
    size = 0
    for e in entries:
        n = len(json.dumps(e, ensure_ascii=False).encode()) + 1
        if parts[-1] and size + n > CHUNK_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(e)
        size += n
    return parts


def record(conn: Any, site: str, booth: str, command: str, args: dict[str, Any], actor: str,
           reply: dict[str, Any] | None) -> None:
    """The desk's audit row: what was sent, by whom, and what the booth answered."""
    from psycopg.types.json import Json

    conn.execute("INSERT INTO desk_actions (site, booth, command, args, actor, ok, reason, "
                 "reply) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                 (site, booth, command, Json(args), actor,
                  None if reply is None else bool(reply.get("ok")),
                  None if reply is None else reply.get("reason"),
                  None if reply is None else Json(reply)))


def load_json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DeskError(f"{path}: {e.strerror}") from None
    except ValueError as e:
        raise DeskError(f"{path}: not JSON: {e}") from None
