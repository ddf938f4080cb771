"""The hall's service queue, kept in SQLite and changed only on the state thread.

Every method takes the batch's connection and runs inside its transaction, so a ticket number,
the ticket row and the ``ticket.issued`` event commit together or not at all: a crash never
reuses a number, and a rolled-back batch leaves nothing behind (no in-memory copy to repair).

Calling order (``call_next``), for the services a counter serves:
1. a regular ticket that has waited ``max_wait_min`` or longer goes first (ageing);
2. otherwise the priority lane (priority tickets by issue order, appointment check-ins by
   booked time), unless ``max_priority_run`` priority tickets were called in a row while
   regular tickets waited;
3. otherwise the regular lane, first come first served.
The run counter is one per hall (not per counter), so the bound holds for the hall as a whole.

A paused counter (the clerk stepped away: ``pause_counter``) calls nobody and does not count as
open in wait estimates until it is resumed; the pause is a row, so it survives a restart.
"""

from __future__ import annotations

import enum
import json
import math
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from gated.config import GatedConfig
from gated.state import new_event_id

RECENT_SAMPLES = 20  # service times kept per service for the wait estimate
COUNTER_IDLE = timedelta(minutes=60)  # a counter that called nobody for this long is closed


class TicketState(enum.StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    SERVED = "served"
    NO_SHOW = "no_show"
    EXPIRED = "expired"  # still waiting when the day ended


class Lane(enum.StrEnum):
    PRIORITY = "priority"
    REGULAR = "regular"


class QueueError(Exception):
    """A calling command that cannot be carried out; ``reason`` goes into the reply."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    number: str
    service: str
    lane: Lane
    priority_reason: str | None
    appointment_ref: str
    issued_at: datetime
    state: TicketState
    counter: str | None = None
    recalls: int = 0
    history: tuple[str, ...] = ()

    def public(self) -> dict[str, Any]:
        return {"ticket_id": self.ticket_id, "number": self.number, "service": self.service,
                "priority": self.lane is Lane.PRIORITY, "priority_reason": self.priority_reason,
                "state": str(self.state), "counter": self.counter, "recalls": self.recalls}


def ensure_schema(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE IF NOT EXISTS q_tickets (
        ord INTEGER PRIMARY KEY AUTOINCREMENT, ticket_id TEXT UNIQUE NOT NULL,
        day TEXT NOT NULL, service TEXT NOT NULL, number TEXT NOT NULL, lane TEXT NOT NULL,
        due REAL NOT NULL, priority_reason TEXT, appointment_ref TEXT NOT NULL DEFAULT '',
        issued_at TEXT NOT NULL, state TEXT NOT NULL, counter TEXT, called_at TEXT,
        closed_at TEXT, recalls INTEGER NOT NULL DEFAULT 0, history TEXT NOT NULL DEFAULT '[]')""")
    # call_next walks each lane in calling order and skips other services: no sort per call.
    db.execute("CREATE INDEX IF NOT EXISTS q_lane_ord ON q_tickets (state, lane, ord)")
    db.execute("CREATE INDEX IF NOT EXISTS q_lane_due ON q_tickets (state, lane, due, ord)")
    db.execute("CREATE INDEX IF NOT EXISTS q_service ON q_tickets (state, service)")
    db.execute("CREATE INDEX IF NOT EXISTS q_counter ON q_tickets (state, counter)")
    if "holder" not in {r[1] for r in db.execute("PRAGMA table_info(q_tickets)")}:  # new in 0.2
        db.execute("ALTER TABLE q_tickets ADD COLUMN holder TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS q_holder ON q_tickets (holder, day)")
    db.execute("""CREATE TABLE IF NOT EXISTS q_numbers (
        service TEXT NOT NULL, day TEXT NOT NULL, last INTEGER NOT NULL,
        PRIMARY KEY (service, day))""")
    db.execute("""CREATE TABLE IF NOT EXISTS q_counters (
        counter TEXT PRIMARY KEY, services TEXT NOT NULL, last_call TEXT,
        paused INTEGER NOT NULL DEFAULT 0)""")
    columns = {r[1] for r in db.execute("PRAGMA table_info(q_counters)").fetchall()}
    if "paused" not in columns:  # a state file from before counters could pause
        db.execute("ALTER TABLE q_counters ADD COLUMN paused INTEGER NOT NULL DEFAULT 0")
    db.execute("""CREATE TABLE IF NOT EXISTS q_service_times (
        id INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT NOT NULL, seconds REAL NOT NULL)""")
    db.execute("CREATE TABLE IF NOT EXISTS q_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")


class Queue:
    """Queue operations; stateless apart from the config, so it survives any rollback."""

    def __init__(self, cfg: GatedConfig) -> None:
        self.cfg = cfg

    # ------------------------------------------------------------------ issuing
    def issue(self, conn: sqlite3.Connection, service: str, now: datetime, *,
              priority_reason: str | None = None, appointment_ref: str = "",
              booked: datetime | None = None, holder: str = "") -> Ticket:
        """Number and enqueue a ticket. ``now`` is local time; the number resets per local day.
        ``holder`` is who it is for (a pseudonym, or ``appt:<ref>``; "" for a manual ticket),
        so the same visitor tapping again can be given their own number back."""
        if service not in self.cfg.services:
            raise QueueError("unknown_service", f"no service {service!r}")
        svc = self.cfg.services[service]
        day = now.date().isoformat()
        row = conn.execute(
            "INSERT INTO q_numbers (service, day, last) VALUES (?, ?, ?) "
            "ON CONFLICT(service, day) DO UPDATE SET last = last + 1 RETURNING last",
            (service, day, svc.start)).fetchone()
        n = int(row[0])  # past 10**width the number just grows a digit; never wraps
        number = f"{self.cfg.queue.booth_prefix}{svc.prefix}{n:0{svc.width}d}"
        lane = Lane.PRIORITY if (priority_reason or booked) else Lane.REGULAR
        due = (booked or now).timestamp()
        ticket_id = new_event_id()
        conn.execute(
            "INSERT INTO q_tickets (ticket_id, day, service, number, lane, due, priority_reason,"
            " appointment_ref, issued_at, state, holder) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (ticket_id, day, service, number, str(lane), due, priority_reason, appointment_ref,
             now.isoformat(), str(TicketState.WAITING), holder or None))
        return Ticket(ticket_id, number, service, lane, priority_reason, appointment_ref, now,
                      TicketState.WAITING)

    def estimate(self, conn: sqlite3.Connection, ticket: Ticket, now: datetime) -> tuple[int, int]:
        """(people ahead, estimated wait in whole minutes) for a waiting ticket."""
        lane_filter = "AND lane = 'priority'" if ticket.lane is Lane.PRIORITY else ""
        ahead = conn.execute(
            f"SELECT count(*) FROM q_tickets WHERE state = 'waiting' AND service = ? "
            f"AND ticket_id != ? AND ord < (SELECT ord FROM q_tickets WHERE ticket_id = ?) "
            f"{lane_filter}", (ticket.service, ticket.ticket_id, ticket.ticket_id)).fetchone()[0]
        if ticket.lane is Lane.REGULAR:  # priority tickets issued later still go first
            ahead += conn.execute(
                "SELECT count(*) FROM q_tickets WHERE state = 'waiting' AND service = ? "
                "AND lane = 'priority' AND ord > (SELECT ord FROM q_tickets WHERE ticket_id = ?)",
                (ticket.service, ticket.ticket_id)).fetchone()[0]
        minutes = self.service_minutes(conn, ticket.service)
        counters = max(1, self.open_counters(conn, ticket.service, now))
        return int(ahead), math.ceil(ahead * minutes / counters)

    # ------------------------------------------------------------------ calling
    def call_next(self, conn: sqlite3.Connection, counter: str, services: list[str] | None,
                  now: datetime) -> Ticket | None:
        """Close the counter's current ticket as served and call the next one, or None.
        A paused counter calls nobody (``counter_paused``)."""
        if self.is_paused(conn, counter):
            raise QueueError("counter_paused", f"counter {counter} is paused; resume it first")
        services = self._services_for(conn, counter, services)
        self._close_current(conn, counter, TicketState.SERVED, now)
        marks = ",".join("?" * len(services))
        regular = conn.execute(
            f"SELECT ticket_id, issued_at FROM q_tickets WHERE state = 'waiting' AND lane = "
            f"'regular' AND service IN ({marks}) ORDER BY ord LIMIT 1", services).fetchone()
        prio = conn.execute(
            f"SELECT ticket_id FROM q_tickets WHERE state = 'waiting' AND lane = 'priority' "
            f"AND service IN ({marks}) ORDER BY due, ord LIMIT 1", services).fetchone()
        run = self._meta(conn, "priority_run")
        pick: str | None = None
        if regular is not None and (
                now - datetime.fromisoformat(regular[1])
                >= timedelta(minutes=self.cfg.queue.max_wait_min)):
            pick = regular[0]
        elif prio is not None and (regular is None or run < self.cfg.queue.max_priority_run):
            pick = prio[0]
        elif regular is not None:
            pick = regular[0]
        if pick is None:
            return None
        is_prio = prio is not None and pick == prio[0]
        # The run only counts priority calls made while regular tickets were waiting.
        self._set_meta(conn, "priority_run", run + 1 if is_prio and regular is not None else 0)
        conn.execute(
            "UPDATE q_tickets SET state = 'called', counter = ?, called_at = ?, "
            "history = json_insert(history, '$[#]', ?) WHERE ticket_id = ?",
            (counter, now.isoformat(), counter, pick))
        return self.get(conn, pick)

    def recall(self, conn: sqlite3.Connection, counter: str) -> Ticket:
        t = self.current(conn, counter)
        if t.recalls >= self.cfg.queue.recall_limit:
            raise QueueError("recall_limit", f"{t.number} recalled {t.recalls} times; "
                             "mark it no_show")
        conn.execute("UPDATE q_tickets SET recalls = recalls + 1 WHERE ticket_id = ?",
                     (t.ticket_id,))
        return self.get(conn, t.ticket_id)

    def close(self, conn: sqlite3.Connection, counter: str, state: TicketState,
              now: datetime) -> Ticket:
        """``served`` or ``no_show`` for the counter's current ticket."""
        t = self.current(conn, counter)
        self._close_current(conn, counter, state, now)
        return self.get(conn, t.ticket_id)

    def transfer(self, conn: sqlite3.Connection, counter: str, service: str) -> Ticket:
        """Send the counter's current ticket to another service; it keeps its place in time."""
        if service not in self.cfg.services:
            raise QueueError("unknown_service", f"no service {service!r}")
        t = self.current(conn, counter)
        conn.execute("UPDATE q_tickets SET state = 'waiting', service = ?, counter = NULL, "
                     "called_at = NULL, recalls = 0 WHERE ticket_id = ?", (service, t.ticket_id))
        return self.get(conn, t.ticket_id)

    def expire_before(self, conn: sqlite3.Connection, day: date, now: datetime) -> int:
        """Tickets of earlier days still open when a new day starts are closed as expired."""
        cur = conn.execute("UPDATE q_tickets SET state = 'expired', closed_at = ? WHERE day < ? "
                           "AND state IN ('waiting', 'called')", (now.isoformat(), day.isoformat()))
        return cur.rowcount

    # ------------------------------------------------------------------ reading
    def get(self, conn: sqlite3.Connection, ticket_id: str) -> Ticket:
        row = conn.execute(
            "SELECT ticket_id, number, service, lane, priority_reason, appointment_ref, issued_at,"
            " state, counter, recalls, history FROM q_tickets WHERE ticket_id = ?",
            (ticket_id,)).fetchone()
        if row is None:
            raise QueueError("unknown_ticket", f"no ticket {ticket_id!r}")
        return _ticket(row)

    def by_number(self, conn: sqlite3.Connection, number: str, day: date) -> Ticket:
        row = conn.execute("SELECT ticket_id FROM q_tickets WHERE number = ? AND day = ? "
                           "ORDER BY ord DESC LIMIT 1", (number, day.isoformat())).fetchone()
        if row is None:
            raise QueueError("unknown_ticket", f"no ticket {number} today")
        return self.get(conn, row[0])

    def held_by(self, conn: sqlite3.Connection, holder: str, service: str,
                day: date) -> Ticket | None:
        """``holder``'s ticket for ``service`` today that still waits or is being called."""
        if not holder:
            return None
        row = conn.execute("SELECT ticket_id FROM q_tickets WHERE holder = ? AND day = ? AND "
                           "service = ? AND state IN ('waiting', 'called') ORDER BY ord DESC "
                           "LIMIT 1", (holder, day.isoformat(), service)).fetchone()
        return self.get(conn, row[0]) if row else None

    def current(self, conn: sqlite3.Connection, counter: str) -> Ticket:
        row = conn.execute("SELECT ticket_id FROM q_tickets WHERE state = 'called' AND counter = ?",
                           (counter,)).fetchone()
        if row is None:
            raise QueueError("no_current_ticket", f"counter {counter} has no called ticket")
        return self.get(conn, row[0])

    def service_minutes(self, conn: sqlite3.Connection, service: str) -> float:
        row = conn.execute("SELECT avg(seconds), count(*) FROM (SELECT seconds FROM "
                           "q_service_times WHERE service = ? ORDER BY id DESC LIMIT ?)",
                           (service, RECENT_SAMPLES)).fetchone()
        if not row[1]:
            return self.cfg.services[service].default_minutes if service in self.cfg.services \
                else 8.0
        return float(row[0]) / 60.0

    def open_counters(self, conn: sqlite3.Connection, service: str, now: datetime) -> int:
        """Counters serving ``service`` that called in the last hour and are not paused."""
        since = (now - COUNTER_IDLE).isoformat()
        n = 0
        for services, last in conn.execute("SELECT services, last_call FROM q_counters "
                                           "WHERE paused = 0"):
            if last and last >= since and service in json.loads(services):
                n += 1
        return n

    # ------------------------------------------------------------------ counters
    def set_paused(self, conn: sqlite3.Connection, counter: str, paused: bool) -> bool:
        """Pause or resume a counter; True when that changed something. A paused counter
        keeps its current ticket (the clerk may finish it) but calls nobody."""
        if self.is_paused(conn, counter) == paused:
            return False
        services = self._services_for(conn, counter, None)
        conn.execute("INSERT INTO q_counters (counter, services, paused) VALUES (?, ?, ?) "
                     "ON CONFLICT(counter) DO UPDATE SET paused = excluded.paused",
                     (counter, json.dumps(services), int(paused)))
        return True

    @staticmethod
    def is_paused(conn: sqlite3.Connection, counter: str) -> bool:
        row = conn.execute("SELECT paused FROM q_counters WHERE counter = ?",
                           (counter,)).fetchone()
        return bool(row and row[0])

    def current_or_none(self, conn: sqlite3.Connection, counter: str) -> Ticket | None:
        try:
            return self.current(conn, counter)
        except QueueError:
            return None

    def counters(self, conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
        """Every counter known (configured or that has called): its services, whether it is
        paused, and its current ticket (number, service, when issued and called)."""
        out: dict[str, dict[str, Any]] = {
            c: {"services": s, "paused": False, "last_call": None, "current": None}
            for c, s in self.cfg.queue.counters.items()}
        for counter, services, last, paused in conn.execute(
                "SELECT counter, services, last_call, paused FROM q_counters"):
            out[counter] = {"services": self.cfg.queue.counters.get(counter) or
                            json.loads(services), "paused": bool(paused), "last_call": last,
                            "current": None}
        for tid, number, service, counter, issued, called, recalls in conn.execute(
                "SELECT ticket_id, number, service, counter, issued_at, called_at, recalls "
                "FROM q_tickets WHERE state = 'called'"):
            entry = out.setdefault(counter, {"services": self._services_for(conn, counter, None),
                                             "paused": False, "last_call": called,
                                             "current": None})
            entry["current"] = {"ticket_id": tid, "number": number, "service": service,
                                "issued_at": issued, "called_at": called, "recalls": recalls}
        return out

    def recent_calls(self, conn: sqlite3.Connection, day: date,
                     limit: int = 10) -> list[dict[str, Any]]:
        """Today's latest calls, newest first: number, service, counter, when, and state."""
        rows = conn.execute(
            "SELECT ticket_id, number, service, counter, called_at, state, recalls FROM q_tickets "
            "WHERE day = ? AND called_at IS NOT NULL ORDER BY called_at DESC, ord DESC LIMIT ?",
            (day.isoformat(), limit))
        keys = ("ticket_id", "number", "service", "counter", "called_at", "state", "recalls")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def wait_minutes(self, conn: sqlite3.Connection, service: str, waiting: int,
                     now: datetime) -> int:
        """The approximate wait of the last person in line for ``service`` (whole minutes)."""
        counters = max(1, self.open_counters(conn, service, now))
        return math.ceil(waiting * self.service_minutes(conn, service) / counters)

    def stats(self, conn: sqlite3.Connection, day: date) -> dict[str, dict[str, Any]]:
        """Per service, today: waiting, called, served, no-shows, average and max wait (min)."""
        out: dict[str, dict[str, Any]] = {
            s: {"waiting": 0, "called": 0, "served": 0, "no_show": 0, "avg_wait_min": 0.0,
                "max_wait_min": 0.0} for s in self.cfg.services}
        for service, state, n in conn.execute(
                "SELECT service, state, count(*) FROM q_tickets WHERE day = ? GROUP BY 1, 2",
                (day.isoformat(),)):
            if service in out and state in out[service]:
                out[service][state] = n
        for service, avg_s, max_s in conn.execute(
                "SELECT service, avg(w), max(w) FROM (SELECT service, (julianday(called_at) - "
                "julianday(issued_at)) * 86400 AS w FROM q_tickets WHERE day = ? AND called_at "
                "IS NOT NULL) GROUP BY service", (day.isoformat(),)):
            if service in out:
                out[service]["avg_wait_min"] = round((avg_s or 0) / 60, 1)
                out[service]["max_wait_min"] = round((max_s or 0) / 60, 1)
        return out

    def waiting_count(self, conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT count(*) FROM q_tickets WHERE state = 'waiting'")
                   .fetchone()[0])

    # ------------------------------------------------------------------ internals
    def _services_for(self, conn: sqlite3.Connection, counter: str,
                      services: list[str] | None) -> list[str]:
        if not services:
            row = conn.execute("SELECT services FROM q_counters WHERE counter = ?",
                               (counter,)).fetchone()
            configured = self.cfg.queue.counters.get(counter)
            services = configured or (json.loads(row[0]) if row else list(self.cfg.services))
        unknown = [s for s in services if s not in self.cfg.services]
        if unknown:
            raise QueueError("unknown_service", f"unknown service(s): {', '.join(unknown)}")
        return list(services)

    def _close_current(self, conn: sqlite3.Connection, counter: str, state: TicketState,
                       now: datetime) -> None:
        row = conn.execute("SELECT ticket_id, service, called_at FROM q_tickets WHERE "
                           "state = 'called' AND counter = ?", (counter,)).fetchone()
        if row is None:
            return
        conn.execute("UPDATE q_tickets SET state = ?, closed_at = ? WHERE ticket_id = ?",
                     (str(state), now.isoformat(), row[0]))
        if state is TicketState.SERVED and row[2]:
            seconds = (now - datetime.fromisoformat(row[2])).total_seconds()
            if 0 < seconds < 4 * 3600:
                conn.execute("INSERT INTO q_service_times (service, seconds) VALUES (?, ?)",
                             (row[1], seconds))
                conn.execute("DELETE FROM q_service_times WHERE service = ? AND id NOT IN (SELECT "
                             "id FROM q_service_times WHERE service = ? ORDER BY id DESC LIMIT ?)",
                             (row[1], row[1], RECENT_SAMPLES))

    def touch_counter(self, conn: sqlite3.Connection, counter: str, services: list[str] | None,
                      now: datetime) -> None:
        services = self._services_for(conn, counter, services)
        conn.execute("INSERT INTO q_counters (counter, services, last_call) VALUES (?, ?, ?) "
                     "ON CONFLICT(counter) DO UPDATE SET services = excluded.services, "
                     "last_call = excluded.last_call", (counter, json.dumps(services),
                                                        now.isoformat()))

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str) -> int:
        row = conn.execute("SELECT value FROM q_meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _set_meta(conn: sqlite3.Connection, key: str, value: int) -> None:
        conn.execute("INSERT INTO q_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                     "SET value = excluded.value", (key, value))


def _ticket(row: tuple[Any, ...]) -> Ticket:
    return Ticket(ticket_id=row[0], number=row[1], service=row[2], lane=Lane(row[3]),
                  priority_reason=row[4], appointment_ref=row[5],
                  issued_at=datetime.fromisoformat(row[6]), state=TicketState(row[7]),
                  counter=row[8], recalls=int(row[9]), history=tuple(json.loads(row[10])))
