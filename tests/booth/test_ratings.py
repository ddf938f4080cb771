"""好差评 on a real store: one rating per served ticket, tied to ticket, service and counter; a
bad one opens a callback case (回访) that is raised again until someone has called back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gated.booth import cases, queueing, ratings
from gated.booth.cases import CaseError, CaseKind, Cases
from gated.booth.queueing import Queue, QueueError, TicketState
from gated.booth.ratings import Ratings, RatingSource
from gated.config import RatingLevel, parse_config
from gated.state.loop import Batch
from tests.support.state_rig import StateRig

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
CFG = parse_config("""
[site]
id = "t"
[booth]
id = "b"
[rating]
callback_reraise_s = 3600
[services.general]
name = "综合"
prefix = "A"
""")


class Rig(StateRig):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, [queueing.ensure_schema, cases.ensure_schema,
                               ratings.ensure_schema])
        self.queue = Queue(CFG)
        self.cases = Cases(CFG)
        self.ratings = Ratings(CFG, self.queue, self.cases)

    def served(self, counter: str = "3") -> str:
        def job(b: Batch) -> str:
            t = self.queue.issue(b.conn, "general", T0)
            self.queue.call_next(b.conn, counter, None, T0)
            self.queue.close(b.conn, counter, TicketState.SERVED, T0 + timedelta(minutes=4))
            return t.ticket_id
        ticket_id: str = self.run(job)
        return ticket_id

    def rate(self, ref: str, level: RatingLevel, reason: str | None = None,
             at: datetime = T0 + timedelta(minutes=5)) -> dict[str, Any]:
        reply: dict[str, Any] = self.run(lambda b: self.ratings.rate(
            b, ref, level, reason, RatingSource.PAD, at))
        return reply

    def reraise(self, at: datetime) -> list[dict[str, Any]]:
        def job(b: Batch) -> list[dict[str, Any]]:
            self.cases.reraise_due(b, at)
            return [e.payload for e in b.events]
        out: list[dict[str, Any]] = self.run(job)
        return out


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with Rig(tmp_path) as r:
        yield r


def test_a_good_rating_is_an_event_tied_to_ticket_service_and_counter(rig: Rig) -> None:
    tid = rig.served("3")
    reply = rig.rate(tid, RatingLevel.SATISFIED)
    assert reply["ok"] and reply["case_id"] is None
    [event] = rig.events("rating")
    assert event["data"] == {"ticket_id": tid, "number": "A001", "source": "pad",
                             "label": "满意", "bad": False, "case_id": None,
                             "service": "general", "counter": "3", "level": "satisfied",
                             "reason": None}
    assert rig.events("callback") == []
    with pytest.raises(QueueError, match="rated already"):  # the QR after the pad: refused
        rig.rate("A001", RatingLevel.VERY_SATISFIED)


def test_only_served_tickets_known_reasons_and_recent_service(rig: Rig) -> None:
    def waiting(b: Batch) -> str:
        return rig.queue.issue(b.conn, "general", T0).ticket_id
    served = rig.served()
    tid = rig.run(waiting)
    with pytest.raises(QueueError) as e:
        rig.rate(tid, RatingLevel.BASIC)
    assert e.value.reason == "not_served"
    with pytest.raises(QueueError) as e:
        rig.rate(served, RatingLevel.BASIC, reason="天气不好")
    assert e.value.reason == "bad_reason"
    with pytest.raises(QueueError) as e:
        rig.rate(served, RatingLevel.BASIC, at=T0 + timedelta(hours=30))
    assert e.value.reason == "too_late"
    with pytest.raises(QueueError) as e:
        rig.rate("Z999", RatingLevel.BASIC)
    assert e.value.reason == "unknown_ticket"


def test_a_bad_rating_opens_a_callback_raised_again_until_called_back(rig: Rig) -> None:
    tid = rig.served("2")
    reply = rig.rate(tid, RatingLevel.VERY_DISSATISFIED, reason="一次没办成")
    case = reply["case_id"]
    assert case
    [opened] = rig.events("callback")
    assert opened["data"] == {"case_id": case, "state": "open", "ticket_id": tid,
                              "number": "A001", "raises": 1, "service": "general",
                              "counter": "2", "level": "very_dissatisfied",
                              "reason": "一次没办成"}
    assert rig.events("rating")[0]["data"]["case_id"] == case
    t = T0 + timedelta(minutes=5)
    assert rig.reraise(t + timedelta(minutes=59)) == []
    assert [e["raises"] for e in rig.reraise(t + timedelta(minutes=61))] == [2]
    rig.run(lambda b: rig.cases.ack(b, case, CaseKind.CALLBACK, "centre-li"))
    # acknowledged is not answered: still raised until the citizen was called back
    assert [e["state"] for e in rig.reraise(t + timedelta(minutes=122))] == ["acked"]
    rig.run(lambda b: rig.cases.called_back(b, case, "centre-li", "explained the procedure"))
    assert rig.reraise(t + timedelta(hours=10)) == []
    with pytest.raises(CaseError, match="already_called_back"):
        rig.run(lambda b: rig.cases.called_back(b, case, "x", ""))
    assert [c["state"] for c in rig.run(lambda b: Cases.open_cases(
        b.conn, CaseKind.CALLBACK))] == ["called_back"]
    rig.run(lambda b: rig.cases.close(b, case, CaseKind.CALLBACK, "resolved"))
    assert rig.run(lambda b: Cases.open_cases(b.conn, CaseKind.CALLBACK)) == []
    assert [e["data"]["state"] for e in rig.events("callback")] == [
        "open", "open", "acked", "acked", "called_back", "closed"]


def test_ratings_per_level_today(rig: Rig) -> None:
    rig.rate(rig.served(), RatingLevel.SATISFIED)
    rig.rate(rig.served(), RatingLevel.SATISFIED)
    rig.rate(rig.served(), RatingLevel.DISSATISFIED)

    def today(b: Batch) -> dict[str, int]:
        conn: sqlite3.Connection = b.conn
        return Ratings.today(conn, T0.date().isoformat())
    assert rig.run(today) == {"satisfied": 2, "dissatisfied": 1}
