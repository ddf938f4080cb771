"""What the ingest accepts from a topic and a payload, and why it refuses the rest.

``problems(event)`` is the wire contract's ``event_problems`` (the envelope: ``id``, ``seq``,
``ts``, ``clock_ok``, ``type``, ``schema``, ``site``, ``booth``, ``session``, ``priority``, and
``data`` against the schema of its type) plus the bounds the database needs. ``parse`` adds
what only the centre can check: that the topic is a booth's event topic and agrees with the
body, that the site is one the county knows, that the bytes are strict JSON. Every refusal
is a ``Refusal`` with a reason slug (kept in the quarantine table and counted), never an
exception out of the worker.

``ts`` is ISO 8601 UTC with milliseconds (``2026-11-22T02:03:04.567Z``), as the contract says.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from gated.wire.contract import event_problems

TOPIC_ROOT = ("gated", "v1")
SITE_WIDE = "_site"
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
#: the latest instant a booth may claim (ms): year 9999; anything later is not a time
_MAX_MS = 253402300799999
#: seq and session stay below 2^53: exact in every JSON reader, and seq + 1 fits in bigint
MAX_SEQ = 2**53


class Reason(enum.StrEnum):
    """Why a message was quarantined (the ``reason`` column)."""

    BAD_TOPIC = "bad_topic"
    TOO_LARGE = "too_large"
    MALFORMED_JSON = "malformed_json"
    BAD_SCHEMA = "bad_schema"  # fails the contract: the envelope, or data for its type
    TOPIC_MISMATCH = "topic_mismatch"  # site, booth or type differ from the topic
    UNKNOWN_SITE = "unknown_site"
    SEQ_REUSED = "seq_reused"  # a seq already stored under another id
    ID_REUSED = "id_reused"  # an id already stored under another booth or seq
    REFUSED_BY_DATABASE = "refused_by_database"


class Refusal(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class TopicParts:
    site: str
    booth: str
    type: str


@dataclass(frozen=True, slots=True)
class Accepted:
    """One event that passed every check, as it will be stored."""

    site: str
    booth: str
    seq: int
    id: str
    type: str
    ts: datetime
    clock_ok: bool
    session: int | None
    schema: int
    priority: str
    data: dict[str, Any]
    data_json: str  # ``data`` as the JSON text stored (checked to be valid UTF-8)


def split_topic(topic: str) -> TopicParts:
    """``gated/v1/<site>/<booth>/events/<type>`` -> its parts; ``Refusal`` otherwise."""
    parts = topic.split("/")
    if (len(parts) != 6 or tuple(parts[:2]) != TOPIC_ROOT or parts[4] != "events"
            or parts[3] == SITE_WIDE):
        raise Refusal(Reason.BAD_TOPIC, "not gated/v1/<site>/<booth>/events/<type>")
    site, booth, etype = parts[2], parts[3], parts[5]
    if not (SLUG.match(site) and SLUG.match(booth) and _TYPE.match(etype)):
        raise Refusal(Reason.BAD_TOPIC, "site, booth or type is not a valid name")
    return TopicParts(site, booth, etype)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _at_least(v: Any, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= MAX_SEQ


def event_time(value: Any) -> datetime | None:
    """The event's ``ts``: ISO 8601 with an offset or ``Z``, or integer ms; None if neither."""
    if _is_int(value):
        return datetime.fromtimestamp(value / 1000, UTC) if 0 <= value <= _MAX_MS else None
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


def problems(event: dict[str, Any]) -> list[str]:
    """Everything wrong with an event, one line each; empty when it is valid.

    The contract's checks first (``gated.wire.contract.event_problems``: the envelope, and
    ``data`` against its type's schema), then the centre's own bounds, which the contract
    leaves open and the database needs: ``seq`` and ``session`` at most 2^53 (exact in every
    JSON reader, and ``seq + 1`` fits a bigint), ``site`` and ``booth`` lower-case slugs (they
    are topic segments and keys)."""
    found = event_problems(event)
    if found:
        return found
    out: list[str] = []
    for key, low in (("seq", 1), ("session", 1)):
        if not _at_least(event.get(key), low):
            out.append(f"{key}: must be an integer from {low} to 2^53")
    for key in ("site", "booth"):
        value = event.get(key)
        if not isinstance(value, str) or not SLUG.match(value):
            out.append(f"{key}: must be a lower-case slug (a-z, 0-9, _ and -, 63 at most)")
    if event_time(event.get("ts")) is None:
        out.append("ts: not a time")
    return out


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def parse(topic: str, payload: bytes, *, max_bytes: int,
          sites: frozenset[str] = frozenset()) -> Accepted:
    """One MQTT message -> the event to store, or ``Refusal`` saying why not."""
    where = split_topic(topic)
    if len(payload) > max_bytes:
        raise Refusal(Reason.TOO_LARGE, f"{len(payload)} bytes > {max_bytes}")
    try:
        # orjson, not gated.wire's bounded parser: as strict (no NaN, integers within 64 bits,
        # nesting within 1,024 levels, a clear error for each) and four times faster, which is
        # the ingest's largest cost per event.
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as e:
        raise Refusal(Reason.MALFORMED_JSON, f"not JSON: {e}") from None
    if not isinstance(body, dict):
        raise Refusal(Reason.MALFORMED_JSON, f"a JSON object is needed, not "
                                             f"{type(body).__name__}")
    if b"\\u0000" in payload and _has_nul(body):  # jsonb cannot hold a NUL character
        raise Refusal(Reason.MALFORMED_JSON, "a string holds \\u0000, which jsonb cannot store")
    found = problems(body)
    if found:
        raise Refusal(Reason.BAD_SCHEMA, "; ".join(found))
    for key, want in (("site", where.site), ("booth", where.booth), ("type", where.type)):
        if body[key] != want:
            raise Refusal(Reason.TOPIC_MISMATCH,
                          f"{key} {str(body[key])[:64]!r} but the topic says {want!r}")
    if sites and where.site not in sites:
        raise Refusal(Reason.UNKNOWN_SITE, f"site {where.site!r} is not in ingest.sites")
    ts = event_time(body["ts"])
    assert ts is not None  # problems() checked it
    try:
        data_json = orjson.dumps(body["data"]).decode()
    except orjson.JSONEncodeError as e:  # a lone surrogate (\\ud800): not text PostgreSQL takes
        raise Refusal(Reason.MALFORMED_JSON, f"data: {e}") from None
    return Accepted(site=where.site, booth=where.booth, seq=body["seq"], id=body["id"],
                    type=body["type"], ts=ts, clock_ok=body["clock_ok"],
                    session=body.get("session"), schema=body["schema"],
                    priority=body["priority"], data=body["data"], data_json=data_json)
