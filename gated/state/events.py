"""The typed event every part of the daemon emits and the outbox stores.

``id`` is unique and sortable (a ULID-like string: milliseconds + randomness, forced monotonic
within the process so a clock step back never sorts a later event first). ``seq`` is assigned by
the outbox inside the committing transaction and is the only thing that defines order: a
Raspberry Pi has no real-time clock and its wall time can jump after a power cut.

Payloads must never hold a full ID number, a name or a photo: only pseudonyms, age bands,
visitor classes and masked display strings (see ``gated.policy.identity``).
"""

from __future__ import annotations

import enum
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

SCHEMA_VERSION = 1
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)  # 10 bits -> 2 characters
_TIME_SHIFTS = (40, 30, 20, 10, 0)  # 48-bit ms (+2 zero bits) -> 10 characters
_RAND_SHIFTS = tuple(range(70, -1, -10))  # 80 bits -> 16 characters
_ORJSON_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
                   | orjson.OPT_NON_STR_KEYS)


class EventPriority(enum.IntEnum):
    """Eviction order when the outbox is full: lowest goes first, ALARM is kept longest."""

    TELEMETRY = 0  # heartbeats, metrics
    INFO = 1  # device state, config, housekeeping
    NORMAL = 2  # passages, tickets, calls
    ALARM = 3  # alarms, assistance requests, escalations, security


class EventType(enum.StrEnum):
    BOOTH_STARTED = "booth.started"
    BOOTH_STOPPED = "booth.stopped"
    HEARTBEAT = "heartbeat"
    METRICS = "metrics"
    DEVICE_STATE = "device.state"
    CREDENTIAL = "credential"
    CARD_UNREADABLE = "card.unreadable"
    DECISION = "decision"
    TICKET_ISSUED = "ticket.issued"
    TICKET_PRINTED = "ticket.printed"
    TICKET_REPRINT = "ticket.reprint"
    TICKET_REMINDED = "ticket.reminded"  # tapped again: their waiting number, not a new one
    TICKET_CALLED = "ticket.called"
    TICKET_CLOSED = "ticket.closed"
    GATE_COMMAND = "gate.command"
    GATE_INPUTS = "gate.inputs"
    PRINTER_STATUS = "printer.status"
    ALARM = "alarm"
    ASSIST_REQUEST = "assist.request"
    ASSIST_ACK = "assist.ack"
    ESCALATION = "escalation"
    RATING = "rating"  # a citizen's 好差评 rating of a served ticket
    CALLBACK = "callback"  # the follow-up case (回访) a bad rating opens
    COUNTER = "counter"  # a counter paused or resumed
    NOTICE = "display.notice"  # the hall display's notice line changed
    COMMAND = "command"
    SECURITY = "security"
    LIST_SYNC = "list.sync"
    OUTBOX_EVICTED = "outbox.evicted"
    OUTBOX_PURGED = "outbox.purged"
    OUTBOX_CORRUPTED = "outbox.corrupted"
    OUTBOX_SKIPPED = "outbox.skipped"  # seq numbers reserved before the database was lost
    OUTBOX_DEAD_LETTER = "outbox.dead_letter"
    STORAGE_ERROR = "storage.error"
    UPLINK_CONNECTED = "uplink.connected"
    UPLINK_REFUSED = "uplink.refused"


DEFAULT_PRIORITY: dict[EventType, EventPriority] = {
    EventType.HEARTBEAT: EventPriority.TELEMETRY,
    EventType.METRICS: EventPriority.TELEMETRY,
    EventType.GATE_INPUTS: EventPriority.INFO,
    EventType.DEVICE_STATE: EventPriority.INFO,
    EventType.PRINTER_STATUS: EventPriority.INFO,
    EventType.BOOTH_STARTED: EventPriority.INFO,
    EventType.BOOTH_STOPPED: EventPriority.INFO,
    EventType.LIST_SYNC: EventPriority.INFO,
    EventType.ALARM: EventPriority.ALARM,
    EventType.ASSIST_REQUEST: EventPriority.ALARM,
    EventType.ESCALATION: EventPriority.ALARM,
    EventType.CALLBACK: EventPriority.ALARM,
    EventType.NOTICE: EventPriority.INFO,
    EventType.SECURITY: EventPriority.ALARM,
    EventType.OUTBOX_EVICTED: EventPriority.ALARM,
    EventType.OUTBOX_PURGED: EventPriority.ALARM,
    EventType.OUTBOX_CORRUPTED: EventPriority.ALARM,
    EventType.OUTBOX_SKIPPED: EventPriority.ALARM,
    EventType.OUTBOX_DEAD_LETTER: EventPriority.ALARM,
    EventType.STORAGE_ERROR: EventPriority.ALARM,
    EventType.UPLINK_CONNECTED: EventPriority.INFO,
    EventType.UPLINK_REFUSED: EventPriority.ALARM,
}


class _IdGenerator:
    """26-char Crockford base32: 48-bit ms timestamp + 80 random bits, monotonic per process.

    Within one millisecond (or while the clock stands behind the last id after a step back) the
    80-bit part counts up from a fresh random value, as ULID's monotonic mode does; the first id
    of each millisecond draws new bits. The time part is encoded once per millisecond, the rest
    ten bits at a time through a 1024-entry table: an id is made for every event on the state
    thread's hot path. The random bits come from ``random.getrandbits`` seeded from
    ``os.urandom``: ids must be unique, not secret.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = -1
        self._prefix = ""
        self._rand = 0
        self._rng = random.Random(os.urandom(16))

    def new(self) -> str:
        with self._lock:
            ms = int(time.time() * 1000)
            if ms > self._ms:
                self._ms, self._rand = ms, self._rng.getrandbits(80)
                self._prefix = _encode(ms, _TIME_SHIFTS)
            else:
                self._rand += 1
                if self._rand >> 80:  # 2^80 ids in one millisecond: borrow the next one
                    self._ms, self._rand = self._ms + 1, 0
                    self._prefix = _encode(self._ms, _TIME_SHIFTS)
            prefix, rand = self._prefix, self._rand
        return prefix + _encode(rand, _RAND_SHIFTS)


def _encode(value: int, shifts: tuple[int, ...]) -> str:
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 0x3FF] for shift in shifts])


_ids = _IdGenerator()


def new_event_id() -> str:
    return _ids.new()


_second_cache: tuple[int, str] = (-1, "")


def utc_now_iso() -> str:
    """UTC now as ``2026-11-22T02:03:04.567Z``; the part up to the second is cached."""
    global _second_cache
    ms = int(time.time() * 1000)
    sec, frac = divmod(ms, 1000)
    cached_sec, prefix = _second_cache
    if sec != cached_sec:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        _second_cache = (sec, prefix)
    return f"{prefix}.{frac:03d}Z"


@dataclass(frozen=True, slots=True)
class Event:
    """One fact the booth reports. ``seq`` is 0 until ``Outbox.append`` stamps it."""

    type: EventType
    payload: dict[str, Any]
    priority: EventPriority
    id: str = field(default_factory=new_event_id)
    ts: str = field(default_factory=utc_now_iso)
    seq: int = 0
    schema: int = SCHEMA_VERSION
    clock_ok: bool = True

    @classmethod
    def make(
        cls,
        type: EventType,
        payload: dict[str, Any] | None = None,
        *,
        priority: EventPriority | None = None,
        clock_ok: bool = True,
    ) -> Event:
        prio = priority if priority is not None else DEFAULT_PRIORITY.get(
            type, EventPriority.NORMAL)
        return cls(type=type, payload=dict(payload or {}), priority=prio, clock_ok=clock_ok)

    def envelope(self, site: str, booth: str, session: int) -> dict[str, Any]:
        """The JSON object published on MQTT and kept in the outbox body; ``session`` is the
        run of the daemon that made it (``gated.state.session``)."""
        return {
            "id": self.id,
            "seq": self.seq,
            "ts": self.ts,
            "clock_ok": self.clock_ok,
            "type": str(self.type),
            "schema": self.schema,
            "site": site,
            "booth": booth,
            "session": session,
            "priority": self.priority.name.lower(),
            "data": self.payload,
        }

    def to_json(self, site: str, booth: str, session: int) -> str:
        """Compact UTF-8 JSON; dates and other non-JSON values as ``str()``, as json does."""
        return self.to_json_bytes(site, booth, session).decode()

    def to_json_bytes(self, site: str, booth: str, session: int) -> bytes:
        return orjson.dumps(self.envelope(site, booth, session), default=str,
                            option=_ORJSON_OPTIONS)
