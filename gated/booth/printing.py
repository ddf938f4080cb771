"""Ticket printing that never loses a ticket.

Every issued ticket gets a row in ``b_prints`` in the same transaction as its ``ticket.issued``
event. The row is deleted only when the printer confirms the ticket came out (``CommandDone``
ok). A ticket that could not print (no printer ready, paper out, cover open, unplugged) becomes
a *reprint*: a ``ticket.reprint`` event tells the guard, and it is printed again as soon as a
printer is ready, unless the guard marks it handed over by hand. Rows left "sent" by a crash are
treated as reprints at the next start, so a power cut mid-print loses nothing either.
"""

from __future__ import annotations

import enum
import json
import sqlite3
from functools import partial
from typing import Any

import structlog

from drivers.base import CommandDone, DeviceCommand, DeviceState, PrinterStatus
from gated.booth.devices import DeviceDirectory
from gated.state import Batch, EventType, new_event_id

log = structlog.get_logger(__name__)


#: device states in which a printer is sent tickets (UNKNOWN: one-way, printed blind)
PRINTABLE = frozenset({DeviceState.READY, DeviceState.UNKNOWN})


class PrintState(enum.StrEnum):
    SENT = "sent"  # handed to a printer, waiting for its CommandDone
    REPRINT = "reprint"  # could not print; waits for a ready printer or the guard


def ensure_schema(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE IF NOT EXISTS b_prints (
        ticket_id TEXT PRIMARY KEY, number TEXT NOT NULL, doc TEXT NOT NULL, state TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0)""")


class Printing:
    """Owned by ``BoothLogic``; every method runs on the state thread inside a batch."""

    def __init__(self, devices: DeviceDirectory) -> None:
        self.devices = devices
        self._inflight: dict[str, str] = {}  # command id -> ticket id
        self._recovered = False

    def submit(self, b: Batch, ticket_id: str, number: str, doc: dict[str, Any]) -> None:
        """Record the ticket and print it after commit, or file it as a reprint right away."""
        b.conn.execute("INSERT OR REPLACE INTO b_prints (ticket_id, number, doc, state) "
                       "VALUES (?, ?, ?, ?)", (ticket_id, number,
                                               json.dumps(doc, ensure_ascii=False),
                                               str(PrintState.SENT)))
        self._send_or_file(b, ticket_id, number, doc, attempt=False)

    def on_done(self, b: Batch, done: CommandDone) -> bool:
        """Handle a printer's CommandDone; False when the command was not a ticket print."""
        ticket_id = self._inflight.pop(done.command_id, None)
        if ticket_id is None:
            return False
        row = b.conn.execute("SELECT number, attempts FROM b_prints WHERE ticket_id = ?",
                             (ticket_id,)).fetchone()
        if row is None:  # handed over by the guard meanwhile
            return True
        if done.ok:
            b.conn.execute("DELETE FROM b_prints WHERE ticket_id = ?", (ticket_id,))
            b.emit(EventType.TICKET_PRINTED, {"ticket_id": ticket_id, "number": row[0],
                                              "reprint": bool(row[1])})
            self.on_printer_ready(b)  # it prints: any reprint still waiting goes too
        else:
            self._file(b, ticket_id, row[0], done.detail or "print_failed")
        return True

    def on_printer_ready(self, b: Batch) -> int:
        """A printer became able to print: send every waiting reprint, oldest first."""
        if not self._ready_printer():
            return 0
        rows = b.conn.execute("SELECT ticket_id, number, doc FROM b_prints WHERE state = ? "
                              "ORDER BY rowid", (str(PrintState.REPRINT),)).fetchall()
        for ticket_id, number, doc in rows:
            b.conn.execute("UPDATE b_prints SET state = ?, attempts = attempts + 1 "
                           "WHERE ticket_id = ?", (str(PrintState.SENT), ticket_id))
            body = json.loads(doc)
            body["reprint"] = True
            self._send_or_file(b, ticket_id, number, body, attempt=True)
        return len(rows)

    def recover(self, b: Batch) -> int:
        """At start: tickets sent but never confirmed by the last run (a crash, a power cut,
        before or after their bytes reached the printer) become reprints, and print at once
        if a printer is ready; else when one becomes ready. Either order of the printer's
        READY and this recovery prints them: one ticket too many, never one too few."""
        rows = b.conn.execute("SELECT ticket_id, number FROM b_prints WHERE state = ?",
                              (str(PrintState.SENT),)).fetchall()
        for ticket_id, number in rows:
            if ticket_id not in self._inflight.values():
                self._file(b, ticket_id, number, "unconfirmed_at_restart")
        if rows:
            self.on_printer_ready(b)
        return len(rows)

    def handed(self, b: Batch, ticket_or_number: str) -> dict[str, Any]:
        """The guard wrote the ticket by hand: stop trying to print it."""
        row = b.conn.execute("SELECT ticket_id, number FROM b_prints WHERE ticket_id = ? OR "
                             "number = ? ORDER BY rowid DESC LIMIT 1",
                             (ticket_or_number, ticket_or_number)).fetchone()
        if row is None:
            return {"ok": False, "reason": "unknown_reprint"}
        b.conn.execute("DELETE FROM b_prints WHERE ticket_id = ?", (row[0],))
        b.emit(EventType.TICKET_PRINTED, {"ticket_id": row[0], "number": row[1],
                                          "reprint": True, "by_hand": True})
        return {"ok": True, "ticket_id": row[0], "number": row[1]}

    @staticmethod
    def pending(conn: sqlite3.Connection, limit: int = -1) -> list[dict[str, Any]]:
        """Tickets not confirmed printed, oldest first; ``limit`` of them (-1: all)."""
        return [{"ticket_id": t, "number": n, "state": s, "reason": r, "attempts": a}
                for t, n, s, r, a in conn.execute(
                    "SELECT ticket_id, number, state, reason, attempts FROM b_prints "
                    "ORDER BY rowid LIMIT ?", (limit,))]

    @staticmethod
    def count(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT count(*) FROM b_prints").fetchone()[0])

    def on_status(self, b: Batch, device: str, obs: PrinterStatus) -> None:
        """A printer's status changed: report it, raise what stops printing, and print the
        waiting reprints once it can print again."""
        b.emit(EventType.PRINTER_STATUS, {"device": device, **obs.__dict__})
        if obs.fault:
            b.emit(EventType.ALARM, {"kind": f"printer_{obs.fault}", "device": device})
        elif self.devices.state(device) in PRINTABLE:
            self.on_printer_ready(b)

    def print_raw(self, b: Batch, doc: dict[str, Any]) -> str | None:
        """A test ticket: not recorded, not reprinted. Returns the printer used, or None."""
        printer = self._ready_printer()
        if printer is None:
            return None
        cmd = DeviceCommand(new_event_id(), "print", {"ticket": doc}, after=tuple(b.first_out))
        b.after_commit(partial(self.devices.send, printer, cmd))
        return printer

    # ------------------------------------------------------------------ internals
    def _send_or_file(self, b: Batch, ticket_id: str, number: str, doc: dict[str, Any], *,
                      attempt: bool) -> None:
        printer = self._ready_printer()
        if printer is None:
            reason = "no_printer" if not self.devices.printers() else "printer_not_ready"
            self._file(b, ticket_id, number, reason, announce=not attempt)
            return
        cmd = DeviceCommand(new_event_id(), "print", {"ticket": doc}, after=tuple(b.first_out))
        self._inflight[cmd.command_id] = ticket_id

        def forget() -> None:
            self._inflight.pop(cmd.command_id, None)
        b.on_rollback(forget)
        b.after_commit(partial(self.devices.send, printer, cmd))

    def _file(self, b: Batch, ticket_id: str, number: str, reason: str, *,
              announce: bool = True) -> None:
        b.conn.execute("UPDATE b_prints SET state = ?, reason = ? WHERE ticket_id = ?",
                       (str(PrintState.REPRINT), reason, ticket_id))
        if announce:
            b.emit(EventType.TICKET_REPRINT, {"ticket_id": ticket_id, "number": number,
                                              "reason": reason})

    def _ready_printer(self) -> str | None:
        """A printer that can print: READY first, else one whose health is UNKNOWN (a
        one-way printer: it prints, blind)."""
        names = self.devices.printers()
        for wanted in (DeviceState.READY, DeviceState.UNKNOWN):
            for name in names:
                if self.devices.state(name) is wanted:
                    return name
        return None
