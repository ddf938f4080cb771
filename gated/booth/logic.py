"""What the booth does with what its devices see: decide, commit, then act.

Runs only on the state thread. For every presentation it builds a privacy-safe credential,
asks ``policy.decide``, commits the credential, decision, ticket and assist events in the
batch's transaction, and only then (``after_commit``) pulses the gate and prints the ticket.
This module dispatches; each part is its own module: ``gates`` (openings, zone modes, lamp),
``printing`` (tickets and reprints), ``cases`` (assist requests, escalations, callbacks),
``ratings`` (好差评), ``notice`` (the display's notice line), ``guests`` and
``next_tap`` (what waits for the next tap), ``queueing`` (numbers and calling). Durable state
lives in SQLite; the few transient flags in memory are restored by ``on_rollback`` when a
batch is re-run.
"""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict, deque
from datetime import UTC, date, datetime
from typing import Any

import structlog

from drivers.base import (
    BadgeRead,
    ButtonKind,
    ButtonPressed,
    CommandDone,
    DeviceKind,
    DeviceState,
    GateAlarm,
    GateInputs,
    GatePassage,
    IdCardRead,
    Observation,
    PrinterStatus,
    QrRead,
    UnreadableCard,
)
from gated.booth import cases, checkins, gates, guests, notice, printing, queueing, ratings
from gated.booth.cases import CaseKind, Cases
from gated.booth.devices import DeviceDirectory
from gated.booth.gates import Gates
from gated.booth.next_tap import NextTap
from gated.booth.printing import PRINTABLE, Printing
from gated.booth.queueing import Lane, Queue, Ticket
from gated.booth.ratings import Ratings
from gated.booth.ticket import TicketInfo, ticket_document
from gated.config import GatedConfig
from gated.policy import (
    AppointmentCode,
    AssistKind,
    BoothFlags,
    CodeKeys,
    CodeProblem,
    Credential,
    CredentialKind,
    Decision,
    Outcome,
    PriorityReason,
    Unreadable,
    VisitorClass,
    appointment_ref_from_qr,
    credential_from_badge,
    credential_from_card,
    decide,
    local_now,
    qr_text,
    read_code,
    unreadable_action,
)
from gated.state import Batch, EventType

log = structlog.get_logger(__name__)

#: Priority tickets print ``ticket.priority_mark`` from the config unless their reason has a
#: label of its own here.
PRIORITY_LABELS = {PriorityReason.APPOINTMENT: "预约"}
STATUS_LIST_MAX = 30  # items of each open list in the status; the rest are counted
MANUAL_PRIORITY_S = 5.0  # a manual ticket's priority applies to that ticket only
UNREADABLE_MESSAGES = {Unreadable.PRESENT_AGAIN: "请重新放置身份证 (present the card again)",
                       Unreadable.SEE_GUARD: "请到值班台 (see the guard)"}


def ensure_schema(db: sqlite3.Connection) -> None:
    for part in (queueing, printing, cases, gates, guests, checkins, ratings, notice):
        part.ensure_schema(db)


class BoothLogic:
    ensure_schema = staticmethod(ensure_schema)

    def __init__(self, cfg: GatedConfig, devices: DeviceDirectory, lists: Any,
                 site_key: bytes, code_keys: CodeKeys | None = None) -> None:
        self.cfg = cfg
        self.code_keys = code_keys or CodeKeys()
        self.devices = devices
        self.lists = lists
        self._key = site_key
        self.queue = Queue(cfg)
        self.printing = Printing(devices)
        self.cases = Cases(cfg)
        self.ratings = Ratings(cfg, self.queue, self.cases)
        self.gates = Gates(cfg, devices)
        self.next_tap = NextTap(cfg.priority.assist_window_s)
        self._denied: dict[str, deque[float]] = defaultdict(deque)
        self._day: date | None = None
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    def reload(self, cfg: GatedConfig, code_keys: CodeKeys | None = None) -> None:
        self.cfg = cfg
        if code_keys is not None:
            self.code_keys = code_keys
        self.queue = Queue(cfg)
        self.cases = Cases(cfg)
        self.ratings = Ratings(cfg, self.queue, self.cases)
        self.gates.cfg = cfg
        self.next_tap.window_s = cfg.priority.assist_window_s

    def now(self) -> datetime:
        return local_now(self.cfg.site.timezone)

    # ------------------------------------------------------------------ observations
    def on_observation(self, b: Batch, device: str, obs: Observation) -> None:
        if isinstance(obs, IdCardRead):
            visit = self.now().date()
            result = credential_from_card(obs, self._key, visit)
            if isinstance(result, UnreadableCard):
                self._unreadable(b, device, result.reason)
            else:
                self.present(b, device, result)
        elif isinstance(obs, UnreadableCard):
            self._unreadable(b, device, obs.reason)
        elif isinstance(obs, BadgeRead):
            self.present(b, device, credential_from_badge(obs, self._key))
        elif isinstance(obs, QrRead):
            self.present(b, device, self._appointment_credential(obs.payload))
        elif isinstance(obs, GateInputs):
            if self.cfg.outbox.gate_inputs:
                b.emit(EventType.GATE_INPUTS, {"device": device, **obs.__dict__})
        elif isinstance(obs, GateAlarm):
            self.gates.on_alarm(b, device, obs)
        elif isinstance(obs, GatePassage):
            if obs.count > obs.admitted and device not in self.gates.held:
                b.emit(EventType.ALARM, {"kind": "tailgating", "device": device,
                                         "passages": obs.count, "admitted": obs.admitted})
        elif isinstance(obs, PrinterStatus):
            self.printing.on_status(b, device, obs)
        elif isinstance(obs, ButtonPressed):
            self._button(b, device, obs.button)

    def _appointment_credential(self, payload: bytes) -> Credential:
        """A presented appointment code: verified when signed; a bare reference is looked up
        in the list only on a booth that does not require signed codes."""
        text = qr_text(payload)
        code = read_code(text, self.code_keys, self.cfg.site.id)
        if isinstance(code, AppointmentCode):
            return Credential(kind=CredentialKind.APPOINTMENT_QR, pseudonym="",
                              appointment_ref=code.ref, code=code)
        if code is CodeProblem.UNSIGNED and not self.cfg.appointments.require_signed:
            return Credential(kind=CredentialKind.APPOINTMENT_QR, pseudonym="",
                              appointment_ref=appointment_ref_from_qr(payload))
        return Credential(kind=CredentialKind.APPOINTMENT_QR, pseudonym="",
                          code_problem=str(code))

    def on_command_done(self, b: Batch, device: str, done: CommandDone) -> None:
        if self.printing.on_done(b, done):
            return
        if not done.ok:
            b.emit(EventType.ALARM, {"kind": "device_command_failed", "device": device,
                                     "detail": done.detail})

    def on_device_state(self, b: Batch, device: str, old: DeviceState, new: DeviceState,
                        reason: str) -> None:
        kind = self.devices.kinds.get(device)
        if kind is DeviceKind.PRINTER and new in PRINTABLE:
            self.printing.on_printer_ready(b)
        if kind is DeviceKind.GATE and new is DeviceState.READY:
            self.gates.restore(b, device)
        if new is DeviceState.OFFLINE and old is not DeviceState.OFFLINE:
            b.emit(EventType.ALARM, {"kind": "device_offline", "device": device,
                                     "reason": reason})

    # ------------------------------------------------------------------ presentations
    def present(self, b: Batch, device: str, cred: Credential, *,
                service: str | None = None) -> Decision:
        """Decide for one credential, commit its events, then act. Returns the decision."""
        now = self.now()
        if cred.kind is CredentialKind.ID_CARD:
            guest = self.next_tap.take_guest(b)
            if guest is not None and cred.pseudonym:  # first: this very tap enters as a guest
                guests.register(b, cred.pseudonym, guest.zone, guest.minutes, now)
        assist, guard = self.next_tap.take(b)
        flags = BoothFlags(assist=assist, guard_priority=guard,
                           guests=guests.lookup(b.conn, cred.pseudonym, now),
                           zone_modes=self.gates.zone_modes(b.conn), service=service,
                           checked_in=cred.code is not None and checkins.checked_in(
                               b.conn, cred.code.ref))
        decision = decide(cred, self.lists, self.cfg, now, flags)
        if decision.visitor is VisitorClass.APPOINTMENT and cred.code is not None:
            checkins.record(b.conn, cred.code.ref, now)  # once: a copy is turned away
        b.emit(EventType.CREDENTIAL, {"device": device, **cred.public()})
        decision_event = b.emit(EventType.DECISION, {"device": device,
                                                     "pseudonym": cred.pseudonym,
                                                     **decision.public()})
        if decision.alerts:
            b.emit(EventType.ALARM, {"kind": "see_guard", "alerts": [str(a) for a in
                                                                     decision.alerts],
                                     "pseudonym": cred.pseudonym, "device": device,
                                     "decision_id": decision_event.id})
        if decision.outcome is Outcome.DENIED and cred.pseudonym:
            self._count_denied(b, cred.pseudonym)
        if decision.open_gate and decision.zone:
            self.gates.open_zone(b, decision.zone, reason=str(decision.visitor))
        ticket = None
        if decision.ticket and decision.service:
            ticket = self.issue_ticket(b, decision, cred, now)
        if decision.needs_escort:
            self.cases.open_assist(b, now, zone=decision.zone, reason=str(decision.priority),
                                   ticket_id=ticket.ticket_id if ticket else None,
                                   number=ticket.number if ticket else None)
            self.gates.lamp(b, decision.zone, on=True)
        return decision

    def issue_ticket(self, b: Batch, decision: Decision, cred: Credential,
                     now: datetime) -> Ticket:
        """A new number, or, for a visitor whose ticket for this service still waits (and a
        service that allows one at a time), a reminder slip of the number they hold."""
        assert decision.service is not None
        holder = (cred.pseudonym or (f"appt:{decision.appointment_ref}"
                                     if decision.appointment_ref else ""))
        held = (self.queue.held_by(b.conn, holder, decision.service, now.date())
                if self.cfg.services[decision.service].one_waiting_ticket else None)
        if held is not None:
            return self._remind(b, held, decision, now)
        booked = (datetime.combine(now.date(), decision.appointment_start, now.tzinfo)
                  if decision.appointment_start else None)
        ticket = self.queue.issue(b.conn, decision.service, now,
                                  priority_reason=str(decision.priority) if decision.priority
                                  else None, appointment_ref=decision.appointment_ref,
                                  booked=booked, holder=holder)
        ahead, wait = self.queue.estimate(b.conn, ticket, now)
        b.emit(EventType.TICKET_ISSUED, {**ticket.public(), "ahead": ahead, "wait_min": wait,
                                         "visitor": str(decision.visitor),
                                         "appointment_ref": decision.appointment_ref})
        info = TicketInfo(ticket_id=ticket.ticket_id, number=ticket.number,
                          service_name=self.cfg.services[ticket.service].name, issued_at=now,
                          ahead=ahead, wait_min=wait, priority=decision.priority is not None,
                          priority_label=PRIORITY_LABELS.get(decision.priority, "")
                          if decision.priority else "", masked_name=cred.masked_name)
        self.printing.submit(b, ticket.ticket_id, ticket.number, ticket_document(self.cfg, info))
        return ticket

    def _remind(self, b: Batch, ticket: Ticket, decision: Decision, now: datetime) -> Ticket:
        """"您的号码 A023 仍有效, 前面还有 N 人": one person holds one place in the queue."""
        ahead, wait = self.queue.estimate(b.conn, ticket, now)
        info = TicketInfo(ticket_id=ticket.ticket_id, number=ticket.number,
                          service_name=self.cfg.services[ticket.service].name,
                          issued_at=ticket.issued_at, ahead=ahead, wait_min=wait,
                          priority=ticket.lane is Lane.PRIORITY, reminder=True)
        printer = self.printing.print_raw(b, ticket_document(self.cfg, info))
        b.emit(EventType.TICKET_REMINDED, {**ticket.public(), "ahead": ahead, "wait_min": wait,
                                           "visitor": str(decision.visitor),
                                           "printed": printer is not None})
        return ticket

    def manual_ticket(self, b: Batch, service: str | None, priority: str | None) -> Decision:
        """The guard's "manual ticket" for a visitor with no card (or a card that won't read)."""
        if priority:
            self.next_tap.flag_priority(PriorityReason(priority), MANUAL_PRIORITY_S)
        cred = Credential(kind=CredentialKind.MANUAL, pseudonym="")
        return self.present(b, "guard", cred, service=service)

    def _count_denied(self, b: Batch, pseudonym: str) -> None:
        window = self.cfg.priority.denied_window_s
        q = self._denied[pseudonym]
        t = time.monotonic()
        while q and q[0] < t - window:
            q.popleft()
        q.append(t)

        def undo() -> None:
            if q:
                q.pop()
        b.on_rollback(undo)
        if len(q) == self.cfg.priority.denied_attempts:
            b.emit(EventType.ALARM, {"kind": "repeated_denials", "pseudonym": pseudonym,
                                     "attempts": len(q), "window_s": window})
        if len(self._denied) > 10_000:  # bound memory on a busy day
            self._denied.clear()

    def _unreadable(self, b: Batch, device: str, reason: str) -> None:
        """The visitor is told what to do (the display and guard console show it); a card a
        genuine, undamaged one cannot be is an alarm for the guard."""
        action, suspect = unreadable_action(reason)
        b.emit(EventType.CARD_UNREADABLE, {
            "device": device, "reason": reason, "action": str(action),
            "message": UNREADABLE_MESSAGES[action]})
        if suspect:
            b.emit(EventType.ALARM, {"kind": "card_suspect", "device": device,
                                     "reason": reason})

    # ------------------------------------------------------------------ buttons and cases
    def _button(self, b: Batch, device: str, button: ButtonKind) -> None:
        """The visitor push-buttons wired to a gate's relay board: the same as the guard's
        ``assist`` (kind ``other``: nobody is asked why) and ``escalate`` commands."""
        log.info("button_pressed", device=device, button=str(button))
        if button is ButtonKind.ASSIST:
            self.next_tap.press_assist(AssistKind.OTHER)
        else:
            self.cases.open_from_button(b, self.now(), device)

    def assist_ack(self, b: Batch, case_id: str, by: str) -> dict[str, Any]:
        row = self.cases.ack(b, case_id, CaseKind.ASSIST, by)
        if Cases.open_assists_in(b.conn, row["zone"]) == 0:
            self.gates.lamp(b, row["zone"], on=False)
        return {"ok": True, "case_id": case_id}

    def escalate(self, b: Batch, number: str | None, source: str) -> dict[str, Any]:
        """办不成事找局长: open an escalation for a ticket (by number, today) or for the booth."""
        now = self.now()
        detail: dict[str, Any] = {"source": source}
        ticket = None
        if number:
            ticket = self.queue.by_number(b.conn, number, now.date())
            # ``ticket_state``, not ``state``: the event's ``state`` is the case's (open, acked..)
            detail.update(service=ticket.service, ticket_state=str(ticket.state),
                          counters=list(ticket.history),
                          waited_min=round((now - ticket.issued_at).total_seconds() / 60, 1))
        case_id = self.cases.open_escalation(b, now, detail,
                                             ticket_id=ticket.ticket_id if ticket else None,
                                             number=ticket.number if ticket else None)
        return {"ok": True, "case_id": case_id}

    # ------------------------------------------------------------------ periodic
    def tick(self, b: Batch, now_utc: datetime | None = None) -> None:
        now = local_now(self.cfg.site.timezone, now_utc or datetime.now(UTC))
        if not self._started:
            self._started = True
            self.printing.recover(b)
        if self._day != now.date():  # at start and at local midnight
            expired = self.queue.expire_before(b.conn, now.date(), now)
            if expired:
                b.emit(EventType.TICKET_CLOSED, {"expired": expired, "reason": "day_end"})
            guests.purge_expired(b.conn, now)
            checkins.purge_before(b.conn, now.date())
            self._day = now.date()
        self.cases.reraise_due(b, now)

    def status(self, conn: Any) -> dict[str, Any]:
        now = self.now()
        day = now.date()
        services = self.queue.stats(conn, day)
        for sid, s in services.items():
            s["wait_min"] = self.queue.wait_minutes(conn, sid, s["waiting"], now)
        return {
            "waiting": self.queue.waiting_count(conn),
            "services": services,
            "counters": self.queue.counters(conn),
            "calls": self.queue.recent_calls(conn, day),
            # the oldest STATUS_LIST_MAX of each, and how many there are: a night of
            # unanswered requests must not grow the status past what a broker takes
            "open_assists": Cases.open_cases(conn, CaseKind.ASSIST, STATUS_LIST_MAX),
            "open_escalations": Cases.open_cases(conn, CaseKind.ESCALATION, STATUS_LIST_MAX),
            "open_callbacks": Cases.open_cases(conn, CaseKind.CALLBACK, STATUS_LIST_MAX),
            "open_counts": {**Cases.open_counts(conn), "reprints": Printing.count(conn)},
            "ratings_today": Ratings.today(conn, day.isoformat()),
            "notice": notice.current(conn),
            "reprints": Printing.pending(conn, STATUS_LIST_MAX),
            "zone_modes": {z: str(m) for z, m in self.gates.zone_modes(conn).items()},
            "zones": {z: {"name": zc.name, "kind": str(zc.kind), "mode": str(
                self.gates.zone_modes(conn).get(z, zc.mode))} for z, zc in self.cfg.zones.items()},
            "armed": self.next_tap.armed(),
        }
