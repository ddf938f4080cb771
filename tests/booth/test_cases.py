"""Assistance requests and escalations nobody answers are raised again, once per period, until
someone acknowledges them. ``now`` is passed in, so the periods are exact, not slept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gated.booth import cases
from gated.booth.cases import CaseError, CaseKind, Cases
from gated.config import GatedConfig
from gated.state.loop import Batch
from tests.support.state_rig import StateRig

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


class Rig(StateRig):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, [cases.ensure_schema])
        self.cases = Cases(GatedConfig.model_validate({
            "site": {"id": "t"}, "booth": {"id": "b"},
            "priority": {"assist_escalate_s": 120, "escalation_reraise_s": 600}}))

    def reraise(self, at: datetime) -> list[dict[str, Any]]:
        """Re-raise what is due at ``at``; the events that produced."""
        def job(b: Batch) -> list[dict[str, Any]]:
            self.cases.reraise_due(b, at)
            return [{"type": str(e.type), **e.payload} for e in b.events]
        result: list[dict[str, Any]] = self.run(job)
        return result


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with Rig(tmp_path) as r:
        yield r


def test_unanswered_assist_is_raised_again_once_per_period_until_acked(rig: Rig) -> None:
    case = rig.run(lambda b: rig.cases.open_assist(b, T0, zone="hall", reason="elderly",
                                                     number="A007"))
    assert rig.reraise(T0 + timedelta(seconds=119)) == []
    raised = rig.reraise(T0 + timedelta(seconds=121))
    assert raised == [{"type": "alarm", "kind": "assist_unanswered", "zone": "hall",
                       "case_id": case, "ticket_id": None, "number": "A007", "raises": 2,
                       "unanswered_s": 121, "reason": "elderly"}]
    assert rig.reraise(T0 + timedelta(seconds=200)) == []  # not again within the period
    assert [e["raises"] for e in rig.reraise(T0 + timedelta(seconds=242))] == [3]
    rig.run(lambda b: rig.cases.ack(b, case, CaseKind.ASSIST, "guard-2"))
    assert rig.reraise(T0 + timedelta(hours=1)) == []
    with pytest.raises(CaseError, match="already_acked"):
        rig.run(lambda b: rig.cases.ack(b, case, CaseKind.ASSIST, "guard-2"))


def test_unacknowledged_escalation_is_raised_again_and_closing_ends_it(rig: Rig) -> None:
    detail = {"service": "social", "counters": ["3"], "waited_min": 40}
    case = rig.run(lambda b: rig.cases.open_escalation(b, T0, detail, ticket_id="t1",
                                                         number="B012"))
    assert rig.reraise(T0 + timedelta(seconds=599)) == []
    raised = rig.reraise(T0 + timedelta(seconds=601))
    assert len(raised) == 1 and raised[0]["type"] == "escalation"
    assert (raised[0]["reraised"], raised[0]["raises"], raised[0]["service"]) == (
        True, 2, "social")
    rig.run(lambda b: rig.cases.ack(b, case, CaseKind.ESCALATION, "director"))
    assert rig.reraise(T0 + timedelta(hours=2)) == []  # acknowledged: someone has it
    rig.run(lambda b: rig.cases.close(b, case, CaseKind.ESCALATION, "resolved"))
    assert rig.run(lambda b: Cases.open_cases(b.conn)) == []
    assert [e["data"]["state"] for e in rig.events("escalation")] == ["open", "open", "acked",
                                                                       "closed"]


def test_escalation_button_opens_one_case_until_it_is_answered(rig: Rig) -> None:
    first = rig.run(lambda b: rig.cases.open_from_button(b, T0, "hall_gate"))
    assert first is not None
    assert rig.run(lambda b: rig.cases.open_from_button(b, T0, "hall_gate")) is None
    other = rig.run(lambda b: rig.cases.open_from_button(b, T0, "office_gate"))
    assert other not in (None, first)  # each button has its own
    # a guard's escalation for a ticket is another matter: it never blocks the button's
    rig.run(lambda b: rig.cases.open_escalation(b, T0, {"source": "guard"}, ticket_id="t",
                                                number="A001"))
    assert rig.run(lambda b: rig.cases.open_from_button(b, T0, "hall_gate")) is None
    rig.run(lambda b: rig.cases.ack(b, first, CaseKind.ESCALATION, "director"))
    again = rig.run(lambda b: rig.cases.open_from_button(b, T0, "hall_gate"))
    assert again not in (None, first)
    opened = [e["data"] for e in rig.events("escalation") if e["data"]["state"] == "open"]
    assert [(e["source"], e.get("device")) for e in opened] == [
        ("button", "hall_gate"), ("button", "office_gate"), ("guard", None),
        ("button", "hall_gate")]
