"""The visitor policy: one pure function from a presentation to a decision.

``decide`` reads nothing but its arguments (credential, lists, config, time, booth flags), so
it is table- and property-tested without devices, and the booth can re-run it after a rollback.
Rules a caller must know:

- The public hall is never locked against a citizen during opening hours: an unknown or
  expired card, an alert entry or a revoked badge sends the visitor to the guard *and* still
  admits them to the hall with a ticket. Only the office area is restricted.
- Sensitive assistance reasons (disability, pregnancy) only raise ``priority`` and ``assist``;
  the decision carries the neutral ``PriorityReason.ASSIST`` so nothing sensitive is stored.
- A zone in ``free_passage`` mode has its gate held open: a tap prints a ticket and nothing is
  sent to the gate. A ``locked`` zone opens for nobody but staff.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Protocol

from gated.config import GatedConfig, ZoneKind, ZoneMode
from gated.policy.codes import CodeProblem
from gated.policy.credentials import CardValidity, Credential, CredentialKind
from gated.policy.schedule import Schedule


class VisitorClass(enum.StrEnum):
    STAFF = "staff"
    APPOINTMENT = "appointment"
    WALK_IN = "walk_in"
    GUEST = "guest"  # registered by the guard for the office area
    UNKNOWN = "unknown"  # a badge nobody knows, an appointment code that matches nothing


class Outcome(enum.StrEnum):
    ADMIT = "admit"  # gate opens (or is held open) for the zone; ticket if any
    SEE_GUARD = "see_guard"  # admitted to the hall, but the guard must look (alert, bad card)
    CLOSED = "closed"  # outside opening hours; no gate, no ticket
    DENIED = "denied"  # office area refused (no appointment, revoked badge, locked zone)


class PriorityReason(enum.StrEnum):
    ELDERLY = "elderly"
    ASSIST = "assist"  # the booth's assist button: disability, pregnancy, other (not stored)
    APPOINTMENT = "appointment"
    MILITARY = "military"
    GUARD = "guard"


class AssistKind(enum.StrEnum):
    """What the visitor pressed; transient, only ``needs_escort`` survives into events."""

    DISABILITY = "disability"
    PREGNANCY = "pregnancy"
    OTHER = "other"


class AlertKind(enum.StrEnum):
    ALERT_LIST = "alert_list"
    REVOKED_BADGE = "revoked_badge"
    EXPIRED_BADGE = "expired_badge"
    UNKNOWN_BADGE = "unknown_badge"
    UNKNOWN_APPOINTMENT = "unknown_appointment"
    APPOINTMENT_CODE = "appointment_code"  # unsigned, forged, expired, used: reason says
    INVALID_CARD = "invalid_card"  # expired or not yet valid ID card


class _Badge(Protocol):
    zones: tuple[str, ...]
    revoked: bool
    valid_until: date | None


class _Appointment(Protocol):
    """A list entry (``gated.booth.lists.Appointment``) or a signed code (``AppointmentCode``)."""

    @property
    def ref(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def zone(self) -> str: ...
    @property
    def day(self) -> date: ...
    @property
    def start(self) -> time: ...
    @property
    def end(self) -> time: ...
    @property
    def priority(self) -> bool: ...


class ListView(Protocol):
    """What policy reads from ``gated.lists.Lists``; any object with these lookups will do."""

    def staff_badge(self, uid: str) -> _Badge | None: ...
    def appointments(self, pseudonym: str, day: date) -> list[_Appointment]: ...
    def appointment(self, ref: str) -> _Appointment | None: ...
    def alert(self, key: str) -> object | None: ...


@dataclass(frozen=True)
class BoothFlags:
    """Booth state that is not a list: set by buttons and the guard's commands."""

    assist: AssistKind | None = None  # assist button pressed just before this tap
    guard_priority: PriorityReason | None = None  # guard flagged the next visitor
    guests: Mapping[str, tuple[str, datetime]] = field(default_factory=dict)  # pseud -> zone, until
    zone_modes: Mapping[str, ZoneMode] = field(default_factory=dict)  # runtime overrides
    service: str | None = None  # manual ticket for a chosen service
    checked_in: bool = False  # the appointment code presented has been checked in already


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    visitor: VisitorClass
    zone: str | None = None  # zone the visitor is admitted to
    open_gate: bool = False  # send an open pulse to the zone's gates
    ticket: bool = False
    service: str | None = None
    priority: PriorityReason | None = None
    needs_escort: bool = False  # light the assist lamp and raise an assist request
    alerts: tuple[AlertKind, ...] = ()
    appointment_ref: str = ""
    appointment_start: time | None = None
    reason: str = ""

    def public(self) -> dict[str, object]:
        """The fields a ``decision`` event carries (nothing personal, nothing sensitive)."""
        return {
            "outcome": str(self.outcome), "visitor": str(self.visitor), "zone": self.zone,
            "open_gate": self.open_gate, "ticket": self.ticket, "service": self.service,
            "priority": str(self.priority) if self.priority else None,
            "needs_escort": self.needs_escort, "alerts": [str(a) for a in self.alerts],
            "appointment_ref": self.appointment_ref, "reason": self.reason,
        }


def decide(cred: Credential, lists: ListView, cfg: GatedConfig, now: datetime,
           flags: BoothFlags | None = None) -> Decision:
    """Decide for one presentation. ``now`` is the site's local time (aware)."""
    flags = flags or BoothFlags()
    sched = Schedule.from_config(cfg.schedule)
    hall_open = sched.is_open(now)
    public = _zone_of_kind(cfg, ZoneKind.PUBLIC)
    office = _zone_of_kind(cfg, ZoneKind.OFFICE)
    alerts: list[AlertKind] = []

    if cred.kind is CredentialKind.BADGE:
        badge = lists.staff_badge(cred.badge_uid)
        if lists.alert(cred.badge_uid) is not None:
            alerts.append(AlertKind.ALERT_LIST)
        if badge is not None and not badge.revoked and not _expired(badge.valid_until, now):
            zone = _staff_zone(badge.zones, office, public)
            if not hall_open and not sched.staff_after_hours:
                return Decision(Outcome.CLOSED, VisitorClass.STAFF, zone, alerts=tuple(alerts),
                                reason="staff_after_hours_disabled")
            return _admit(cfg, flags, VisitorClass.STAFF, zone, alerts, staff=True)
        kind = (AlertKind.UNKNOWN_BADGE if badge is None else
                AlertKind.REVOKED_BADGE if badge.revoked else AlertKind.EXPIRED_BADGE)
        return _to_guard(cfg, flags, VisitorClass.UNKNOWN, public, hall_open, [*alerts, kind],
                         ticket=False, reason=str(kind))

    if not hall_open:
        return Decision(Outcome.CLOSED, _visitor_class(cred), reason="outside_opening_hours")

    priority = _priority(cred, cfg, flags)
    if cred.kind in (CredentialKind.ID_CARD, CredentialKind.APPOINTMENT_QR) and cred.pseudonym:
        if lists.alert(cred.pseudonym) is not None:
            alerts.append(AlertKind.ALERT_LIST)
    if cred.kind is CredentialKind.ID_CARD and cred.validity in (CardValidity.EXPIRED,
                                                                 CardValidity.NOT_YET_VALID):
        alerts.append(AlertKind.INVALID_CARD)

    early = timedelta(minutes=cfg.appointments.early_min)
    problem = _code_problem(cred, now, early, flags) if cred.kind is \
        CredentialKind.APPOINTMENT_QR else None
    if problem is not None:  # sent to the guard with an alarm; the hall still admits
        return _to_guard(cfg, flags, VisitorClass.UNKNOWN, public, True,
                         [*alerts, AlertKind.APPOINTMENT_CODE], ticket=True,
                         reason=f"appointment_{problem}", priority=priority)
    appt = _appointment(cred, lists, now, early)
    if appt is None and cred.kind is CredentialKind.APPOINTMENT_QR:
        return _to_guard(cfg, flags, VisitorClass.UNKNOWN, public, True,
                         [*alerts, AlertKind.UNKNOWN_APPOINTMENT], ticket=True,
                         reason="appointment_not_found", priority=priority)
    if appt is not None:
        priority = priority or (PriorityReason.APPOINTMENT if appt.priority else None)
        zone = appt.zone if appt.zone in cfg.zones else public
        service = appt.service if appt.service in cfg.services else cfg.queue.default_service
        d = _admit(cfg, flags, VisitorClass.APPOINTMENT, zone, alerts, service=service,
                   priority=priority, ticket=True)
        return replace(d, appointment_ref=appt.ref, appointment_start=appt.start)

    guest = flags.guests.get(cred.pseudonym) if cred.pseudonym else None
    if guest is not None and guest[1] > now:
        return _admit(cfg, flags, VisitorClass.GUEST, guest[0], alerts, priority=priority)

    visitor = _visitor_class(cred)
    service = flags.service if flags.service in cfg.services else cfg.queue.default_service
    if alerts:
        return _to_guard(cfg, flags, visitor, public, True, alerts, ticket=True,
                         reason=str(alerts[0]), priority=priority, service=service)
    return _admit(cfg, flags, visitor, public, alerts, service=service, priority=priority,
                  ticket=True)


# --------------------------------------------------------------------------- helpers


def _admit(cfg: GatedConfig, flags: BoothFlags, visitor: VisitorClass, zone: str | None,
           alerts: list[AlertKind], *, staff: bool = False, service: str | None = None,
           priority: PriorityReason | None = None, ticket: bool = False) -> Decision:
    mode = _mode(cfg, flags, zone)
    if mode is ZoneMode.LOCKED and not staff:
        return Decision(Outcome.DENIED, visitor, zone, alerts=tuple(alerts), reason="zone_locked")
    outcome = Outcome.SEE_GUARD if alerts else Outcome.ADMIT
    return Decision(outcome, visitor, zone, open_gate=mode is not ZoneMode.FREE_PASSAGE,
                    ticket=ticket, service=service if ticket else None, priority=priority,
                    needs_escort=priority in (PriorityReason.ELDERLY, PriorityReason.ASSIST),
                    alerts=tuple(alerts), reason=str(visitor))


def _to_guard(cfg: GatedConfig, flags: BoothFlags, visitor: VisitorClass, public: str | None,
              hall_open: bool, alerts: list[AlertKind], *, ticket: bool, reason: str,
              priority: PriorityReason | None = None, service: str | None = None) -> Decision:
    """Send to the guard; during opening hours the hall still admits (it is never locked)."""
    if not hall_open or public is None or _mode(cfg, flags, public) is ZoneMode.LOCKED:
        return Decision(Outcome.DENIED, visitor, None, alerts=tuple(alerts), reason=reason)
    assert alerts, "the guard is told why: at least one alert"
    d = _admit(cfg, flags, visitor, public, alerts, service=service or cfg.queue.default_service,
               priority=priority, ticket=ticket)
    return replace(d, reason=reason)


def _priority(cred: Credential, cfg: GatedConfig, flags: BoothFlags) -> PriorityReason | None:
    if flags.assist is not None:
        return PriorityReason.ASSIST
    if flags.guard_priority is not None:
        return flags.guard_priority
    if cred.age is not None and cred.age >= cfg.priority.elderly_age:
        return PriorityReason.ELDERLY
    return None


def _code_problem(cred: Credential, now: datetime, early: timedelta,
                  flags: BoothFlags) -> str | None:
    """Why a presented appointment code checks nobody in, or None (a valid signed code in its
    window, or a bare reference on a booth that accepts them)."""
    if cred.code_problem:
        return cred.code_problem
    code = cred.code
    if code is None:
        return None
    start = datetime.combine(code.day, code.start, now.tzinfo) - early
    end = datetime.combine(code.day, code.end, now.tzinfo)
    if now >= end or code.day != now.date():
        return str(CodeProblem.EXPIRED) if now >= start else str(CodeProblem.TOO_EARLY)
    if now < start:
        return str(CodeProblem.TOO_EARLY)
    if flags.checked_in:
        return str(CodeProblem.ALREADY_CHECKED_IN)
    return None


def _appointment(cred: Credential, lists: ListView, now: datetime,
                 early: timedelta) -> _Appointment | None:
    """Today's appointment whose window (opened ``early``) contains ``now``; else None. A
    signed code is its own appointment (what the list holds for it fills in the rest)."""
    if cred.kind is CredentialKind.APPOINTMENT_QR:
        if cred.code is not None:
            listed = lists.appointment(cred.code.ref)
            if listed is not None and not cred.code.service:
                return replace(cred.code, service=listed.service,
                               priority=cred.code.priority or listed.priority)
            return cred.code
        appt = lists.appointment(cred.appointment_ref)
        return appt if appt is not None and _in_window(appt, now, early) else None
    if cred.kind is not CredentialKind.ID_CARD or not cred.pseudonym:
        return None
    hits = [a for a in lists.appointments(cred.pseudonym, now.date())
            if _in_window(a, now, early)]
    return min(hits, key=lambda a: a.start) if hits else None


def _in_window(appt: _Appointment, now: datetime, early: timedelta) -> bool:
    if appt.day != now.date():
        return False
    start = datetime.combine(appt.day, appt.start, now.tzinfo) - early
    end = datetime.combine(appt.day, appt.end, now.tzinfo)
    return start <= now < end


def _expired(valid_until: date | None, now: datetime) -> bool:
    return valid_until is not None and valid_until < now.date()


def _staff_zone(zones: tuple[str, ...], office: str | None, public: str | None) -> str | None:
    if not zones or office in zones:
        return office or public
    return zones[0]


def _zone_of_kind(cfg: GatedConfig, kind: ZoneKind) -> str | None:
    return next((zid for zid, z in cfg.zones.items() if z.kind is kind), None)


def _mode(cfg: GatedConfig, flags: BoothFlags, zone: str | None) -> ZoneMode:
    if zone is None or zone not in cfg.zones:
        return ZoneMode.NORMAL
    return flags.zone_modes.get(zone, cfg.zones[zone].mode)


def _visitor_class(cred: Credential) -> VisitorClass:
    """A card or the guard's manual ticket is a walk-in; a badge or code nobody knows is not."""
    if cred.kind in (CredentialKind.ID_CARD, CredentialKind.MANUAL):
        return VisitorClass.WALK_IN
    return VisitorClass.UNKNOWN
