"""The visitor policy: a table of cases, the opening-hours calendar, and properties.

The policy reads lists through a small protocol; here an in-memory ``ListTable`` stands in for
``gated.lists.Lists`` so that each row of the table states its lists explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gated.booth.lists import Appointment as Appt
from gated.booth.lists import StaffBadge as Badge
from gated.config import parse_config
from gated.config.hall import ZoneMode
from gated.policy.credentials import CardValidity, Credential, CredentialKind
from gated.policy.decide import (
    AlertKind,
    AssistKind,
    BoothFlags,
    Outcome,
    PriorityReason,
    VisitorClass,
    decide,
)
from gated.policy.schedule import Schedule

TZ = ZoneInfo("Asia/Shanghai")
CFG = parse_config("""
[site]
id = "t"
[booth]
id = "b"
[schedule]
holidays = [2026-10-01]
workdays = [2026-09-27]
[services.general]
name = "综合"
prefix = "A"
[services.social]
name = "社保"
prefix = "B"
""")
MON_10 = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)  # a Monday, inside 08:30-12:00
MON_13 = datetime(2026, 11, 23, 13, 0, tzinfo=TZ)  # lunch break: closed
SAT_10 = datetime(2026, 11, 28, 10, 0, tzinfo=TZ)


@dataclass
class ListTable:
    badges: dict[str, Badge] = field(default_factory=dict)
    appts: list[Appt] = field(default_factory=list)
    alerts: set[str] = field(default_factory=set)

    def staff_badge(self, uid: str) -> Badge | None:
        return self.badges.get(uid)

    def appointments(self, pseudonym: str, day: date) -> list[Appt]:
        return [a for a in self.appts if a.pseudonym == pseudonym and a.day == day]

    def appointment(self, ref: str) -> Appt | None:
        return next((a for a in self.appts if a.ref == ref), None)

    def alert(self, key: str) -> object | None:
        return key if key in self.alerts else None


def card(age: int = 35, pseud: str = "p1",
         validity: CardValidity = CardValidity.VALID) -> Credential:
    return Credential(kind=CredentialKind.ID_CARD, pseudonym=pseud, age=age, validity=validity)


def badge(uid: str = "04A1B2C3") -> Credential:
    return Credential(kind=CredentialKind.BADGE, pseudonym="b:" + uid, badge_uid=uid)


def qr(ref: str) -> Credential:
    return Credential(kind=CredentialKind.APPOINTMENT_QR, pseudonym="", appointment_ref=ref)


MANUAL = Credential(kind=CredentialKind.MANUAL, pseudonym="")
APPT_OFFICE = Appt("R1", "p1", "social", "office", MON_10.date(), time(10, 0), time(10, 30))
APPT_PRIO = Appt("R2", "p2", "general", "hall", MON_10.date(), time(9, 45), time(10, 15), True)
LATE_APPT = Appt("R3", "p3", "general", "office", MON_10.date(), time(11, 0), time(11, 30))

# (name, credential, lists, now, flags, expected outcome, visitor, zone, open, ticket,
#  service, priority, escort, alerts)
CASES = [
    ("walk-in, open hours", card(), ListTable(), MON_10, None, Outcome.ADMIT,
     VisitorClass.WALK_IN, "hall", True, True, "general", None, False, ()),
    ("walk-in at lunch", card(), ListTable(), MON_13, None, Outcome.CLOSED,
     VisitorClass.WALK_IN, None, False, False, None, None, False, ()),
    ("walk-in on saturday", card(), ListTable(), SAT_10, None, Outcome.CLOSED,
     VisitorClass.WALK_IN, None, False, False, None, None, False, ()),
    ("elderly walk-in", card(age=60), ListTable(), MON_10, None, Outcome.ADMIT,
     VisitorClass.WALK_IN, "hall", True, True, "general", PriorityReason.ELDERLY, True, ()),
    ("59 is not elderly", card(age=59), ListTable(), MON_10, None, Outcome.ADMIT,
     VisitorClass.WALK_IN, "hall", True, True, "general", None, False, ()),
    ("assist button", card(), ListTable(), MON_10, BoothFlags(assist=AssistKind.PREGNANCY),
     Outcome.ADMIT, VisitorClass.WALK_IN, "hall", True, True, "general", PriorityReason.ASSIST,
     True, ()),
    ("military flag", card(), ListTable(), MON_10,
     BoothFlags(guard_priority=PriorityReason.MILITARY), Outcome.ADMIT, VisitorClass.WALK_IN,
     "hall", True, True, "general", PriorityReason.MILITARY, False, ()),
    ("staff badge", badge(), ListTable(badges={"04A1B2C3": Badge("04A1B2C3")}), MON_10, None,
     Outcome.ADMIT, VisitorClass.STAFF, "office", True, False, None, None, False, ()),
    ("staff after hours", badge(), ListTable(badges={"04A1B2C3": Badge("04A1B2C3")}), SAT_10,
     None, Outcome.ADMIT, VisitorClass.STAFF, "office", True, False, None, None, False, ()),
    ("revoked badge", badge(), ListTable(badges={"04A1B2C3": Badge("04A1B2C3", revoked=True)}),
     MON_10, None, Outcome.SEE_GUARD, VisitorClass.UNKNOWN, "hall", True, False, None, None,
     False, (AlertKind.REVOKED_BADGE,)),
    ("expired badge", badge(), ListTable(badges={"04A1B2C3": Badge(
        "04A1B2C3", valid_until=date(2026, 1, 1))}), MON_10, None, Outcome.SEE_GUARD,
     VisitorClass.UNKNOWN, "hall", True, False, None, None, False, (AlertKind.EXPIRED_BADGE,)),
    ("unknown badge", badge("FFFF"), ListTable(), MON_10, None, Outcome.SEE_GUARD,
     VisitorClass.UNKNOWN, "hall", True, False, None, None, False, (AlertKind.UNKNOWN_BADGE,)),
    ("unknown badge after hours", badge("FFFF"), ListTable(), SAT_10, None, Outcome.DENIED,
     VisitorClass.UNKNOWN, None, False, False, None, None, False, (AlertKind.UNKNOWN_BADGE,)),
    ("office appointment by ID card", card(), ListTable(appts=[APPT_OFFICE]), MON_10, None,
     Outcome.ADMIT, VisitorClass.APPOINTMENT, "office", True, True, "social", None, False, ()),
    ("priority appointment by QR", qr("R2"), ListTable(appts=[APPT_PRIO]), MON_10, None,
     Outcome.ADMIT, VisitorClass.APPOINTMENT, "hall", True, True, "general",
     PriorityReason.APPOINTMENT, False, ()),
    ("appointment too early is a walk-in", card(pseud="p3"), ListTable(appts=[LATE_APPT]),
     MON_10, None, Outcome.ADMIT, VisitorClass.WALK_IN, "hall", True, True, "general", None,
     False, ()),
    ("unknown QR still gets the hall", qr("nope"), ListTable(), MON_10, None, Outcome.SEE_GUARD,
     VisitorClass.UNKNOWN, "hall", True, True, "general", None, False,
     (AlertKind.UNKNOWN_APPOINTMENT,)),
    ("alert entry is never locked out", card(pseud="bad"), ListTable(alerts={"bad"}), MON_10,
     None, Outcome.SEE_GUARD, VisitorClass.WALK_IN, "hall", True, True, "general", None, False,
     (AlertKind.ALERT_LIST,)),
    ("expired ID card: hall, see guard", card(validity=CardValidity.EXPIRED), ListTable(),
     MON_10, None, Outcome.SEE_GUARD, VisitorClass.WALK_IN, "hall", True, True, "general", None,
     False, (AlertKind.INVALID_CARD,)),
    ("free passage: ticket, no pulse", card(), ListTable(), MON_10,
     BoothFlags(zone_modes={"hall": ZoneMode.FREE_PASSAGE}), Outcome.ADMIT,
     VisitorClass.WALK_IN, "hall", False, True, "general", None, False, ()),
    ("locked office refuses appointment", card(), ListTable(appts=[APPT_OFFICE]), MON_10,
     BoothFlags(zone_modes={"office": ZoneMode.LOCKED}), Outcome.DENIED,
     VisitorClass.APPOINTMENT, "office", False, False, None, None, False, ()),
    ("locked office still opens for staff", badge(), ListTable(badges={"04A1B2C3": Badge(
        "04A1B2C3")}), MON_10, BoothFlags(zone_modes={"office": ZoneMode.LOCKED}), Outcome.ADMIT,
     VisitorClass.STAFF, "office", True, False, None, None, False, ()),
    ("guest registered by the guard", card(pseud="g"), ListTable(), MON_10,
     BoothFlags(guests={"g": ("office", MON_10 + timedelta(hours=1))}), Outcome.ADMIT,
     VisitorClass.GUEST, "office", True, False, None, None, False, ()),
    ("expired guest is a walk-in", card(pseud="g"), ListTable(), MON_10,
     BoothFlags(guests={"g": ("office", MON_10 - timedelta(minutes=1))}), Outcome.ADMIT,
     VisitorClass.WALK_IN, "hall", True, True, "general", None, False, ()),
    ("manual ticket for a service", MANUAL, ListTable(), MON_10, BoothFlags(service="social"),
     Outcome.ADMIT, VisitorClass.WALK_IN, "hall", True, True, "social", None, False, ()),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_decision_table(case: tuple) -> None:  # type: ignore[type-arg]
    (_, cred, lists, now, flags, outcome, visitor, zone, open_gate, ticket, service, priority,
     escort, alerts) = case
    d = decide(cred, lists, CFG, now, flags)
    assert (d.outcome, d.visitor, d.zone, d.open_gate, d.ticket, d.service, d.priority,
            d.needs_escort, d.alerts) == (outcome, visitor, zone, open_gate, ticket, service,
                                          priority, escort, alerts)


def test_staff_after_hours_can_be_disabled() -> None:
    cfg = CFG.model_copy(update={"schedule": CFG.schedule.model_copy(
        update={"staff_after_hours": False})})
    d = decide(badge(), ListTable(badges={"04A1B2C3": Badge("04A1B2C3")}), cfg, SAT_10)
    assert d.outcome is Outcome.CLOSED and not d.open_gate


@pytest.mark.parametrize(("when", "is_open"), [
    (datetime(2026, 11, 23, 8, 29, tzinfo=TZ), False),
    (datetime(2026, 11, 23, 8, 30, tzinfo=TZ), True),
    (datetime(2026, 11, 23, 11, 59, tzinfo=TZ), True),
    (datetime(2026, 11, 23, 12, 0, tzinfo=TZ), False),
    (datetime(2026, 11, 23, 17, 29, tzinfo=TZ), True),
    (datetime(2026, 11, 23, 17, 30, tzinfo=TZ), False),
    (datetime(2026, 10, 1, 10, 0, tzinfo=TZ), False),  # National Day holiday (a Thursday)
    (datetime(2026, 9, 27, 10, 0, tzinfo=TZ), True),  # make-up working Sunday
    (datetime(2026, 9, 26, 10, 0, tzinfo=TZ), False),  # an ordinary Saturday
])
def test_opening_hours(when: datetime, is_open: bool) -> None:
    assert Schedule.from_config(CFG.schedule).is_open(when) is is_open


def test_decision_event_carries_no_sensitive_reason() -> None:
    d = decide(card(), ListTable(), CFG, MON_10, BoothFlags(assist=AssistKind.DISABILITY))
    text = repr(d.public())
    assert "disability" not in text and "pregnan" not in text
    assert d.public()["priority"] == "assist"


credentials = st.one_of(
    st.builds(card, age=st.integers(0, 110), pseud=st.sampled_from(["p1", "p2", "p3", "bad"]),
              validity=st.sampled_from(list(CardValidity))),
    st.builds(badge, uid=st.sampled_from(["04A1B2C3", "FFFF"])),
    st.builds(qr, ref=st.sampled_from(["R1", "R2", "zz"])),
    st.just(MANUAL),
)
times = st.builds(lambda d, m: datetime(2026, 11, 23, tzinfo=TZ) + timedelta(days=d, minutes=m),
                  st.integers(0, 13), st.integers(0, 24 * 60 - 1))
modes = st.dictionaries(st.sampled_from(["hall", "office"]), st.sampled_from(list(ZoneMode)))
LISTS = ListTable(badges={"04A1B2C3": Badge("04A1B2C3")}, appts=[APPT_OFFICE, APPT_PRIO],
                  alerts={"bad"})


@settings(max_examples=400, deadline=None)
@given(cred=credentials, now=times, zone_modes=modes,
       assist=st.sampled_from([None, *AssistKind]))
def test_policy_properties(cred: Credential, now: datetime, zone_modes: dict[str, ZoneMode],
                           assist: AssistKind | None) -> None:
    d = decide(cred, LISTS, CFG, now, BoothFlags(assist=assist, zone_modes=zone_modes))
    hall_open = Schedule.from_config(CFG.schedule).is_open(now)
    # The public hall never turns a card-holder away while it is open and not locked.
    if (hall_open and cred.kind is not CredentialKind.BADGE
            and zone_modes.get("hall", ZoneMode.NORMAL) is not ZoneMode.LOCKED):
        assert d.outcome in (Outcome.ADMIT, Outcome.SEE_GUARD, Outcome.DENIED)
        if d.outcome is Outcome.DENIED:
            assert d.zone == "office"  # only the office can refuse
    # Nothing opens outside hours except for staff.
    if not hall_open and d.open_gate:
        assert d.visitor is VisitorClass.STAFF
    # A free-passage zone is never pulsed; a locked zone only opens for staff.
    if d.zone and zone_modes.get(d.zone) is ZoneMode.FREE_PASSAGE:
        assert not d.open_gate
    if d.zone and zone_modes.get(d.zone) is ZoneMode.LOCKED and d.open_gate:
        assert d.visitor is VisitorClass.STAFF
    # Tickets always name a configured service; escorts always carry a priority.
    if d.ticket:
        assert d.service in CFG.services
    if d.needs_escort:
        assert d.priority in (PriorityReason.ELDERLY, PriorityReason.ASSIST)
    if assist is not None and d.ticket:
        assert d.priority is PriorityReason.ASSIST


@pytest.mark.parametrize(("payload", "ref"), [
    ("预约-20261123-0042".encode(), "预约-20261123-0042"),
    ("预约-20261123-0042".encode("gbk"), "预约-20261123-0042"),  # printed by a GBK system
    (b"  R42\n", "R42"),
    (b"x" * 500, "x" * 128),
])
def test_appointment_ref_from_qr(payload: bytes, ref: str) -> None:
    from gated.policy.credentials import appointment_ref_from_qr

    assert appointment_ref_from_qr(payload) == ref
