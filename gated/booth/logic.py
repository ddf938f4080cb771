"""What the booth does with what its devices see: decide, commit, then act.

Runs only on the state thread. For every presentation it builds a privacy-safe credential,
asks ``policy.decide``, commits the credential, decision, ticket and assist events in the
batch's transaction, and only then (``after_commit``) pulses the gate and prints the ticket.
Durable state (queue, prints, cases, guests, zone modes) lives in SQLite; the few transient
flags kept in memory (an assist button press waiting for the next tap, a guard's flag) are
restored by ``on_rollback`` when a batch is re-run.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import sqlite_utils
import structlog

from drivers.base import (
    BadgeRead,
    ButtonKind,
    ButtonPressed,
    CommandDone,
    DeviceCommand,
    DeviceKind,
    DeviceState,
    GateAlarm,
    GateAlarmKind,
    GateInputs,
    GatePassage,
    IdCardRead,
    Observation,
    PrinterStatus,
    QrRead,
    UnreadableCard,
)
from gated.booth import cases, printing, queueing
from gated.booth.cases import CaseKind, Cases
from gated.booth.devices import DeviceDirectory
from gated.booth.printing import Printing
from gated.booth.queueing import Queue, Ticket
from gated.booth.ticket import TicketInfo, ticket_document
from gated.config import GatedConfig, ZoneMode
from gated.policy import (
    AssistKind,
    BoothFlags,
    Credential,
    CredentialKind,
    Decision,
    Outcome,
    PriorityReason,
    appointment_ref_from_qr,
    credential_from_badge,
    credential_from_card,
    decide,
    local_now,
)
from gated.state import Batch, EventType, new_event_id

log = structlog.get_logger(__name__)

#: Priority tickets print ``ticket.priority_mark`` from the config unless their reason has a
#: label of its own here.
PRIORITY_LABELS = {PriorityReason.APPOINTMENT: "预约"}


def ensure_schema(db: sqlite_utils.Database) -> None:
    queueing.ensure_schema(db)
    printing.ensure_schema(db)
    cases.ensure_schema(db)
    db.execute("CREATE TABLE IF NOT EXISTS b_zone_modes (zone TEXT PRIMARY KEY, mode TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS b_guests (pseudonym TEXT PRIMARY KEY, zone TEXT, "
               "until TEXT)")


class BoothLogic:
    ensure_schema = staticmethod(ensure_schema)

    def __init__(self, cfg: GatedConfig, devices: DeviceDirectory, lists: Any,
                 site_key: bytes) -> None:
        self.cfg = cfg
        self.devices = devices
        self.lists = lists
        self._key = site_key
        self.queue = Queue(cfg)
        self.printing = Printing(devices)
        self.cases = Cases(cfg)
        self._assist: tuple[AssistKind, float] | None = None  # (kind, monotonic deadline)
        self._guard_flag: tuple[PriorityReason, float] | None = None
        self._guest_arm: tuple[str, float, float] | None = None  # zone, minutes, deadline
        self._denied: dict[str, deque[float]] = defaultdict(deque)
        self._held: set[str] = set()  # gates held open (free passage, fire)
        self._day: date | None = None
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    def reload(self, cfg: GatedConfig) -> None:
        self.cfg = cfg
        self.queue = Queue(cfg)
        self.cases = Cases(cfg)

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
            self.present(b, device, Credential(kind=CredentialKind.APPOINTMENT_QR, pseudonym="",
                                               appointment_ref=appointment_ref_from_qr(
                                                   obs.payload)))
        elif isinstance(obs, GateInputs):
            b.emit(EventType.GATE_INPUTS, {"device": device, **obs.__dict__})
        elif isinstance(obs, GateAlarm):
            self._gate_alarm(b, device, obs)
        elif isinstance(obs, GatePassage):
            if obs.count > 1 and device not in self._held:
                b.emit(EventType.ALARM, {"kind": "tailgating", "device": device,
                                         "passages": obs.count})
        elif isinstance(obs, PrinterStatus):
            self._printer_status(b, device, obs)
        elif isinstance(obs, ButtonPressed):
            self._button(b, device, obs.button)

    def on_command_done(self, b: Batch, device: str, done: CommandDone) -> None:
        if self.printing.on_done(b, done):
            return
        if not done.ok:
            b.emit(EventType.ALARM, {"kind": "device_command_failed", "device": device,
                                     "detail": done.detail})

    def on_device_state(self, b: Batch, device: str, old: DeviceState, new: DeviceState,
                        reason: str) -> None:
        kind = self.devices.kinds.get(device)
        if kind is DeviceKind.PRINTER and new is DeviceState.READY:
            self.printing.on_printer_ready(b)
        if kind is DeviceKind.GATE and new is DeviceState.READY:
            self._restore_gate(b, device)
        if new is DeviceState.OFFLINE and old is not DeviceState.OFFLINE:
            b.emit(EventType.ALARM, {"kind": "device_offline", "device": device,
                                     "reason": reason})

    # ------------------------------------------------------------------ presentations
    def present(self, b: Batch, device: str, cred: Credential, *,
                service: str | None = None) -> Decision:
        """Decide for one credential, commit its events, then act. Returns the decision."""
        now = self.now()
        if self._guest_arm is not None and cred.kind is CredentialKind.ID_CARD:
            self._register_guest(b, cred, now)  # first, so this very tap is let in as a guest
        flags = self._take_flags(b, cred.pseudonym, service, now)
        decision = decide(cred, self.lists, self.cfg, now, flags)
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
            self._count_denied(b, cred.pseudonym, now)
        if decision.open_gate and decision.zone:
            self.open_zone(b, decision.zone, reason=str(decision.visitor))
        ticket = None
        if decision.ticket and decision.service:
            ticket = self.issue_ticket(b, decision, cred, now)
        if decision.needs_escort:
            self.cases.open_assist(b, now, zone=decision.zone, reason=str(decision.priority),
                                   ticket_id=ticket.ticket_id if ticket else None,
                                   number=ticket.number if ticket else None)
            self._lamp(b, decision.zone, on=True)
        return decision

    def issue_ticket(self, b: Batch, decision: Decision, cred: Credential,
                     now: datetime) -> Ticket:
        assert decision.service is not None
        booked = (datetime.combine(now.date(), decision.appointment_start, now.tzinfo)
                  if decision.appointment_start else None)
        ticket = self.queue.issue(b.conn, decision.service, now,
                                  priority_reason=str(decision.priority) if decision.priority
                                  else None, appointment_ref=decision.appointment_ref,
                                  booked=booked)
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

    def manual_ticket(self, b: Batch, service: str | None, priority: str | None) -> Decision:
        """The guard's "manual ticket" for a visitor with no card (or a card that won't read)."""
        if priority:
            self._guard_flag = (PriorityReason(priority), time.monotonic() + 5)
        cred = Credential(kind=CredentialKind.MANUAL, pseudonym="")
        return self.present(b, "guard", cred, service=service)

    # ------------------------------------------------------------------ gates
    def open_zone(self, b: Batch, zone: str, *, reason: str, hold: bool = False) -> list[str]:
        gates = self.devices.gates_for_zone(zone)
        for gate in gates:
            action = "hold_open" if hold else "open"
            b.emit(EventType.GATE_COMMAND, {"device": gate, "zone": zone, "action": action,
                                            "reason": reason})
            self._send_after_commit(b, gate, action)
        return gates

    def set_zone_mode(self, b: Batch, zone: str, mode: ZoneMode, by: str) -> None:
        b.conn.execute("INSERT OR REPLACE INTO b_zone_modes (zone, mode) VALUES (?, ?)",
                       (zone, str(mode)))
        b.emit(EventType.COMMAND, {"name": "set_zone_mode", "zone": zone, "mode": str(mode),
                                   "by": by})
        for gate in self.devices.gates_for_zone(zone):
            self._apply_mode(b, gate, mode)

    def zone_modes(self, conn: Any) -> dict[str, ZoneMode]:
        return {z: ZoneMode(m) for z, m in conn.execute("SELECT zone, mode FROM b_zone_modes")
                if z in self.cfg.zones}

    def _restore_gate(self, b: Batch, gate: str) -> None:
        """After a (re)connect the relay board knows nothing: re-apply the zone's mode."""
        zone = next((z for z in self.cfg.zones if gate in self.devices.gates_for_zone(z)), None)
        if zone is None:
            return
        mode = self.zone_modes(b.conn).get(zone, self.cfg.zones[zone].mode)
        if mode is not ZoneMode.NORMAL:
            self._apply_mode(b, gate, mode)
        if Cases.open_assists_in(b.conn, zone):
            self._send_after_commit(b, gate, "lamp", on=True)

    def _apply_mode(self, b: Batch, gate: str, mode: ZoneMode) -> None:
        action = {ZoneMode.FREE_PASSAGE: "hold_open", ZoneMode.NORMAL: "release",
                  ZoneMode.LOCKED: "close"}[mode]
        if mode is ZoneMode.FREE_PASSAGE:
            self._held.add(gate)
        else:
            self._held.discard(gate)
        self._send_after_commit(b, gate, action)

    def _lamp(self, b: Batch, zone: str | None, *, on: bool) -> None:
        zones = [zone] if zone else list(self.cfg.zones)
        for z in zones:
            for gate in self.devices.gates_for_zone(z):
                self._send_after_commit(b, gate, "lamp", on=on)

    def _send_after_commit(self, b: Batch, device: str, action: str, **args: Any) -> None:
        b.after_commit(partial(self.devices.send, device,
                               DeviceCommand(new_event_id(), action, dict(args))))

    def _gate_alarm(self, b: Batch, device: str, obs: GateAlarm) -> None:
        if obs.kind is GateAlarmKind.FIRE:
            self._held.add(device)
        elif obs.kind is GateAlarmKind.FIRE_CLEARED:
            self._held.discard(device)
        b.emit(EventType.ALARM, {"kind": f"gate_{obs.kind}", "device": device,
                                 "detail": obs.detail})

    # ------------------------------------------------------------------ printer
    def _printer_status(self, b: Batch, device: str, obs: PrinterStatus) -> None:
        b.emit(EventType.PRINTER_STATUS, {"device": device, **obs.__dict__})
        if obs.fault:
            b.emit(EventType.ALARM, {"kind": f"printer_{obs.fault}", "device": device})
        elif self.devices.state(device) is DeviceState.READY:
            self.printing.on_printer_ready(b)

    # ------------------------------------------------------------------ buttons and flags
    def _button(self, b: Batch, device: str, button: ButtonKind) -> None:
        """The visitor push-buttons wired to a gate's relay board: the same as the guard's
        ``assist`` (kind ``other``: nobody is asked why) and ``escalate`` commands."""
        log.info("button_pressed", device=device, button=str(button))
        if button is ButtonKind.ASSIST:
            self.press_assist(AssistKind.OTHER)
        else:
            self.cases.open_from_button(b, self.now(), device)

    def press_assist(self, kind: AssistKind) -> None:
        """Assist button: the next tap (or manual ticket) within the window gets priority."""
        self._assist = (kind, time.monotonic() + self.cfg.priority.assist_window_s)

    def flag_priority(self, reason: PriorityReason) -> None:
        self._guard_flag = (reason, time.monotonic() + self.cfg.priority.assist_window_s)

    def arm_guest(self, zone: str, minutes: float) -> None:
        self._guest_arm = (zone, minutes, time.monotonic() + self.cfg.priority.assist_window_s)

    def _take_flags(self, b: Batch, pseudonym: str, service: str | None,
                    now: datetime) -> BoothFlags:
        mono = time.monotonic()
        saved = (self._assist, self._guard_flag)
        assist = self._assist[0] if self._assist and self._assist[1] > mono else None
        guard = self._guard_flag[0] if self._guard_flag and self._guard_flag[1] > mono else None
        self._assist = self._guard_flag = None

        def restore() -> None:
            self._assist, self._guard_flag = saved
        b.on_rollback(restore)
        guests = {p: (z, datetime.fromisoformat(u)) for p, z, u in b.conn.execute(
            "SELECT pseudonym, zone, until FROM b_guests WHERE pseudonym = ? AND until > ?",
            (pseudonym, now.isoformat()))} if pseudonym else {}
        return BoothFlags(assist=assist, guard_priority=guard, guests=guests,
                          zone_modes=self.zone_modes(b.conn), service=service)

    def _register_guest(self, b: Batch, cred: Credential, now: datetime) -> None:
        assert self._guest_arm is not None
        zone, minutes, deadline = self._guest_arm
        saved = self._guest_arm
        self._guest_arm = None
        b.on_rollback(lambda: setattr(self, "_guest_arm", saved))
        if deadline < time.monotonic() or not cred.pseudonym:
            return
        until = now + timedelta(minutes=minutes)
        b.conn.execute("INSERT OR REPLACE INTO b_guests (pseudonym, zone, until) VALUES (?,?,?)",
                       (cred.pseudonym, zone, until.isoformat()))
        b.emit(EventType.COMMAND, {"name": "register_guest", "pseudonym": cred.pseudonym,
                                   "zone": zone, "until": until.isoformat()})

    def _count_denied(self, b: Batch, pseudonym: str, now: datetime) -> None:
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
        b.emit(EventType.CARD_UNREADABLE, {"device": device, "reason": reason,
                                           "message": "unreadable card, see the guard"})

    # ------------------------------------------------------------------ cases
    def assist_ack(self, b: Batch, case_id: str, by: str) -> dict[str, Any]:
        row = self.cases.ack(b, case_id, CaseKind.ASSIST, by)
        if Cases.open_assists_in(b.conn, row["zone"]) == 0:
            self._lamp(b, row["zone"], on=False)
        return {"ok": True, "case_id": case_id}

    def escalate(self, b: Batch, number: str | None, source: str) -> dict[str, Any]:
        """办不成事找局长: open an escalation for a ticket (by number, today) or for the booth."""
        now = self.now()
        detail: dict[str, Any] = {"source": source}
        ticket = None
        if number:
            ticket = self.queue.by_number(b.conn, number, now.date())
            detail.update(service=ticket.service, state=str(ticket.state),
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
            b.conn.execute("DELETE FROM b_guests WHERE until <= ?", (now.isoformat(),))
            self._day = now.date()
        self.cases.reraise_due(b, now)

    def status(self, conn: Any) -> dict[str, Any]:
        day = self.now().date()
        return {
            "waiting": self.queue.waiting_count(conn),
            "services": self.queue.stats(conn, day),
            "open_assists": Cases.open_cases(conn, CaseKind.ASSIST),
            "open_escalations": Cases.open_cases(conn, CaseKind.ESCALATION),
            "reprints": Printing.pending(conn),
            "zone_modes": {z: str(m) for z, m in self.zone_modes(conn).items()},
            "armed": self.armed(),
        }

    def armed(self) -> dict[str, float]:
        """Seconds left for what waits for the next tap (the assist button, the guard's
        priority flag, a guest registration), so the guard sees a press was taken. Never the
        assist kind: it may be sensitive. Read from any thread (one tuple per attribute)."""
        mono = time.monotonic()
        out = {}
        for name, flag in (("assist", self._assist), ("priority_flag", self._guard_flag),
                           ("guest", self._guest_arm)):
            if flag is not None and flag[-1] > mono:
                out[name] = round(flag[-1] - mono, 1)
        return out
