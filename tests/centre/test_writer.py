"""The batch writer and the sequencer on a real PostgreSQL: exactly once whatever arrives
twice, reuses quarantined with the first event kept, a row PostgreSQL refuses isolated from
its batch, gaps closed by late arrivals and explained by the booth's own events."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from gated.centre.envelope import Reason, parse
from gated.centre.writer import Message, Writer, explained_ranges, seq_runs
from gated.state.events import EventType
from tests.centre.support import envelope

pytestmark = [pytest.mark.integration]


def msg(doc: dict[str, Any] | bytes, topic: str | None = None, mid: int = 1) -> Message:
    if isinstance(doc, bytes):
        return Message(topic or "gated/v1/s1/b1/events/ticket.issued", doc, mid, 1, 1)
    return Message(topic or f"gated/v1/{doc['site']}/{doc['booth']}/events/{doc['type']}",
                   json.dumps(doc).encode(), mid, 1, 1)


def progress(db: Any) -> list[tuple[Any, ...]]:
    return list(db.execute("SELECT booth, contiguous, max_seq, open_gaps, missing_seqs, "
                           "explained_gaps FROM booth_progress ORDER BY booth").fetchall())


def gaps(db: Any) -> list[tuple[Any, ...]]:
    return list(db.execute("SELECT first_seq, last_seq, explained FROM booth_gaps "
                           "ORDER BY first_seq").fetchall())


def test_seq_runs() -> None:
    assert seq_runs([]) == []
    assert seq_runs([1, 2, 3, 7, 9, 10]) == [(1, 3), (7, 7), (9, 10)]


def test_every_event_once_whatever_comes_twice(db: Any) -> None:
    w = Writer(db, worker="t", max_bytes=65536)
    docs = [envelope("s1", "b1", i) for i in range(1, 11)]
    r = w.write([msg(d) for d in docs[:6]] + [msg(docs[2])])  # a redelivery in the same batch
    assert (r.stored, r.duplicates, sum(r.quarantined.values())) == (6, 1, 0)
    r = w.write([msg(d) for d in docs])  # the booth sends everything again
    assert (r.stored, r.duplicates) == (4, 6)
    assert db.execute("SELECT count(*), count(DISTINCT id), min(seq), max(seq) FROM events"
                      ).fetchone() == (10, 10, 1, 10)
    w.sequence()
    assert progress(db) == [("b1", 10, 10, 0, 0, 0)]


def test_reuses_are_quarantined_and_the_first_event_stays(db: Any) -> None:
    w = Writer(db, worker="t", max_bytes=65536)
    a = envelope("s1", "b1", 1)
    w.write([msg(a)])
    new_id = envelope("s1", "b1", 1)  # seq 1 from the past under a new id
    moved = {**a, "seq": 2}  # the same id under another seq
    other_booth = {**a, "booth": "b2"}
    both = envelope("s1", "b1", 5)
    twin = envelope("s1", "b1", 5)  # the same seq in one batch, another id
    r = w.write([msg(new_id), msg(moved), msg(other_booth), msg(both), msg(twin)])
    assert r.stored == 1 and r.quarantined == {"seq_reused": 2, "id_reused": 2}
    rows = db.execute("SELECT reason, event_id, seq, booth FROM quarantine ORDER BY qid"
                      ).fetchall()
    assert sorted(rows) == sorted([
        ("seq_reused", twin["id"], 5, "b1"), ("seq_reused", new_id["id"], 1, "b1"),
        ("id_reused", a["id"], 2, "b1"), ("id_reused", a["id"], 1, "b2")])
    assert db.execute("SELECT id FROM events WHERE seq = 1").fetchone() == (a["id"],)
    payload = db.execute("SELECT payload FROM quarantine WHERE event_id = %s",
                         (new_id["id"],)).fetchone()[0]
    assert json.loads(bytes(payload)) == new_id  # kept as it came


def test_a_row_the_database_refuses_is_isolated_from_its_batch(db: Any) -> None:
    w = Writer(db, worker="t", max_bytes=65536)
    docs = [envelope("s1", "b1", i) for i in range(1, 6)]
    docs[1] = envelope("s1", "b1", 2, data={**docs[1]["data"], "number": "\ud800"})
    docs[2] = envelope("s1", "b1", 3, over={"seq": 2**62})  # beyond 2^53
    # a status is stored as it came: jsonb refuses the lone surrogate, in the middle of a batch
    status = msg(b'{"online": true, "state": "online", "version": "\\ud800"}',
                 "gated/v1/s1/b1/status")
    r = w.write([msg(d) for d in docs[:3]] + [status] + [msg(d) for d in docs[3:]])
    assert r.stored == 3 and r.quarantined == {"malformed_json": 1, "bad_schema": 1,
                                               "refused_by_database": 1}
    assert db.execute("SELECT seq FROM events ORDER BY seq").fetchall() == [(1,), (4,), (5,)]
    detail = db.execute("SELECT detail FROM quarantine WHERE reason = 'refused_by_database'"
                        ).fetchone()[0]
    assert "surrogate" in detail


def test_gaps_close_when_late_events_arrive_and_are_explained_by_the_booth(db: Any) -> None:
    w = Writer(db, worker="t", max_bytes=65536)
    w.write([msg(envelope("s1", "b1", i)) for i in (1, 2, 3, 7, 8, 12)])
    w.sequence()
    assert gaps(db) == [(4, 6, False), (9, 11, False)]
    assert progress(db) == [("b1", 3, 12, 2, 6, 0)]
    w.write([msg(envelope("s1", "b1", 4))])  # a late one (the live lane went ahead)
    evicted = envelope("s1", "b1", 13, EventType.OUTBOX_EVICTED,
                       {"evicted": {"heartbeat": 2}, "evicted_total": 2, "ranges": [[5, 6]]})
    dead = envelope("s1", "b1", 14, EventType.OUTBOX_DEAD_LETTER,
                    {"seq": 10, "reason": "puback:0x87 Not authorized", "attempts": 5})
    w.write([msg(evicted), msg(dead)])
    w.sequence()
    assert gaps(db) == [(5, 6, True), (9, 9, False), (10, 10, True), (11, 11, False)]
    assert progress(db) == [("b1", 8, 14, 2, 2, 2)]
    corrupted = envelope("s1", "b1", 40, EventType.OUTBOX_CORRUPTED, {
        "moved_to": "gated.db.corrupt-1", "error": "malformed", "salvaged": {"events": 3},
        "lost_tables": [], "seq_gap_from": 15, "seq_resumed_at": 40, "ranges": [[15, 39]]})
    w.write([msg(corrupted), msg(envelope("s1", "b1", 9)), msg(envelope("s1", "b1", 11))])
    w.sequence()
    assert gaps(db) == [(5, 6, True), (10, 10, True), (15, 39, True)]
    assert progress(db) == [("b1", 40, 40, 0, 0, 3)]


def test_explained_ranges_take_only_what_makes_sense() -> None:
    doc = envelope("s1", "b1", 13, EventType.OUTBOX_EVICTED,
                   {"evicted": {}, "evicted_total": 0, "ranges": [[5, 6]]})
    ev = parse("gated/v1/s1/b1/events/outbox.evicted", json.dumps(doc).encode(),
               max_bytes=65536)
    assert explained_ranges(ev) == [(5, 6)]
    odd = dataclasses.replace(ev, data={"ranges": [[5, 6], [20, 30], [0, 1], "x", [7, 3],
                                                   [True, 2], [8, 9, 10]]})
    assert explained_ranges(odd) == [(5, 6)]


def test_statuses_keep_the_last_one_and_when_its_state_began(db: Any) -> None:
    w = Writer(db, worker="t", max_bytes=65536)
    topic = "gated/v1/s1/b1/status"
    online = {"online": True, "state": "online", "version": "0.1.0", "ts": "x",
              "devices": {"gate": {"state": "ready"}, "printer": {"state": "degraded"}},
              "outbox": {"depth": 7, "oldest_age_s": 3.5}}
    w.write([msg(json.dumps(online).encode(), topic)])
    first = db.execute("SELECT online_since FROM booth_status").fetchone()[0]
    w.write([msg(json.dumps({**online, "outbox": {"depth": 0}}).encode(), topic)])
    assert db.execute("SELECT online_since FROM booth_status").fetchone()[0] == first
    assert db.execute("SELECT online, backlog, devices_not_ready FROM fleet_health"
                      ).fetchone() == (True, 0, 1)
    # a will of an earlier run of the booth, come late: ignored
    w.write([msg(json.dumps({**online, "session": 4}).encode(), topic)])
    w.write([msg(json.dumps({"online": False, "state": "offline", "reason": "lost",
                             "session": 3}).encode(), topic)])
    assert db.execute("SELECT online, session FROM fleet_health").fetchone() == (True, 4)
    w.write([msg(json.dumps({"online": False, "state": "offline", "reason": "lost",
                             "session": 4}).encode(), topic), msg(b"", topic),
             msg(b"{bad", topic)])
    row = db.execute("SELECT online, state, offline_reason, online_since > %s, quarantined "
                     "FROM fleet_health", (first,)).fetchone()
    assert row == (False, "offline", "lost", True, 1)
    assert db.execute("SELECT reason FROM quarantine").fetchall() == [
        (str(Reason.MALFORMED_JSON),)]
