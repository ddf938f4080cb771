"""The envelope checks and the topic checks, as pure functions: every refusal has a reason
and says which field; the booth's own envelopes pass."""

from __future__ import annotations

import json

import pytest

from gated.centre.envelope import Reason, Refusal, event_time, parse, problems, split_topic
from gated.state.events import EventType
from tests.centre.support import envelope

TOPIC = "gated/v1/s1/b1/events/ticket.issued"


def test_the_booths_own_envelope_passes() -> None:
    doc = envelope("s1", "b1", 7, EventType.TICKET_ISSUED, session=3)
    assert problems(doc) == []
    ev = parse(TOPIC, json.dumps(doc).encode(), max_bytes=4096)
    assert (ev.site, ev.booth, ev.seq, ev.type, ev.data) == ("s1", "b1", 7, "ticket.issued",
                                                             doc["data"])
    assert ev.session == 3 and ev.ts.tzinfo is not None


def test_data_is_checked_against_its_types_schema() -> None:
    doc = envelope("s1", "b1", 7, EventType.TICKET_ISSUED)
    doc["data"] = {**doc["data"], "priority": "yes", "name": "someone"}
    found = problems(doc)
    assert any(p.startswith("data.priority") for p in found), found
    assert any("name" in p for p in found) and "someone" not in " ".join(found)


@pytest.mark.parametrize(("field", "value", "says"), [
    ("id", "not-an-id", "id:"), ("id", "0" * 25, "id:"), ("seq", 0, "seq:"),
    ("seq", True, "seq:"), ("seq", 2**53 + 1, "seq:"), ("type", "Ticket Issued", "type:"),
    ("ts", "2026-11-22T02:03:04", "ts:"), ("ts", -1, "ts:"), ("clock_ok", "yes", "clock_ok:"),
    ("schema", 0, "schema:"), ("site", "S 1", "site:"), ("booth", None, "booth:"),
    ("priority", "urgent", "priority:"), ("data", [], "data:"), ("session", 0, "session:"),
    ("session", 2**53 + 1, "session:"), ("type", "ticket.lost", "type:"),
])
def test_each_bad_field_is_named(field: str, value: object, says: str) -> None:
    doc = envelope("s1", "b1", 1)
    doc[field] = value
    found = problems(doc)
    assert len(found) == 1 and found[0].startswith(says), found


def test_ts_is_read_as_iso_or_integer_milliseconds() -> None:
    iso = event_time("2026-11-22T02:03:04.567Z")
    assert iso is not None and event_time(int(iso.timestamp() * 1000)) == iso
    assert event_time(1.5) is None and event_time("x" * 50) is None


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    ("gated/v1/s1/b1/status/x", b"{}", Reason.BAD_TOPIC),
    ("gated/v1/s1/_site/events/x", b"{}", Reason.BAD_TOPIC),
    ("gated/v2/s1/b1/events/ticket.issued", b"{}", Reason.BAD_TOPIC),
    (TOPIC, b"x" * 5000, Reason.TOO_LARGE),
    (TOPIC, b"", Reason.MALFORMED_JSON),
    (TOPIC, b"[" * 100 + b"]" * 100, Reason.MALFORMED_JSON),
    (TOPIC, b'{"seq": 1' + b"0" * 30 + b"}", Reason.BAD_SCHEMA),  # not a 64-bit integer
    (TOPIC, b'{"a": ' + b"[" * 2000 + b"]" * 2000 + b"}", Reason.MALFORMED_JSON),
    (TOPIC, b'{"seq": NaN}', Reason.MALFORMED_JSON),
    (TOPIC, b'{"id": 1}', Reason.BAD_SCHEMA),
    ("gated/v1/s1/b2/events/ticket.issued", None, Reason.TOPIC_MISMATCH),
    ("gated/v1/s1/b1/events/ticket.called", None, Reason.TOPIC_MISMATCH),
    ("gated/v1/s7/b1/events/ticket.issued", None, Reason.TOPIC_MISMATCH),
])
def test_refusals(topic: str, payload: bytes | None, reason: Reason) -> None:
    raw = payload if payload is not None else json.dumps(envelope("s1", "b1", 1)).encode()
    with pytest.raises(Refusal) as e:
        parse(topic, raw, max_bytes=4096)
    assert e.value.reason is reason, e.value.detail


def test_an_unknown_site_is_refused_only_when_the_county_lists_its_sites() -> None:
    doc = json.dumps(envelope("s9", "b1", 1)).encode()
    topic = "gated/v1/s9/b1/events/ticket.issued"
    assert parse(topic, doc, max_bytes=4096).site == "s9"
    with pytest.raises(Refusal) as e:
        parse(topic, doc, max_bytes=4096, sites=frozenset({"s1"}))
    assert e.value.reason is Reason.UNKNOWN_SITE
    assert split_topic(TOPIC).type == "ticket.issued"
