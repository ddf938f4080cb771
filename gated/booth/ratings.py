"""好差评: a citizen's rating of a served ticket, from the counter's rating pad or the ticket's QR.

One rating per ticket, whichever way it comes first; only a served ticket, and only within
``rating.max_age_h`` of its service. The ``rating`` event carries the ticket, its service and
the counter that served it, the level and the optional reason tag: nothing about the person.
A bad rating (不满意, 非常不满意) opens a callback case (回访, ``cases``) in the same transaction.
"""

from __future__ import annotations

import enum
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from gated.booth.cases import Cases
from gated.booth.queueing import Queue, QueueError, TicketState
from gated.config import GatedConfig, RatingLevel
from gated.state import Batch, EventType


class RatingSource(enum.StrEnum):
    PAD = "pad"  # the rating pad at the counter
    QR = "qr"  # the rating QR code on the ticket


def ensure_schema(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE IF NOT EXISTS r_ratings (
        ticket_id TEXT PRIMARY KEY, level TEXT NOT NULL, reason TEXT, source TEXT NOT NULL,
        rated_at TEXT NOT NULL, case_id TEXT)""")


class Ratings:
    def __init__(self, cfg: GatedConfig, queue: Queue, cases: Cases) -> None:
        self.cfg = cfg
        self.queue = queue
        self.cases = cases

    def rate(self, b: Batch, ticket_ref: str, level: RatingLevel, reason: str | None,
             source: RatingSource, now: datetime) -> dict[str, Any]:
        """Record one rating; ``ticket_ref`` is a ticket id, or a number of today."""
        if reason is not None and reason not in self.cfg.rating.reasons:
            raise QueueError("bad_reason", f"reason must be one of {self.cfg.rating.reasons}")
        try:
            ticket = self.queue.get(b.conn, ticket_ref)
        except QueueError:
            ticket = self.queue.by_number(b.conn, ticket_ref, now.date())
        if ticket.state is not TicketState.SERVED:
            raise QueueError("not_served", f"{ticket.number} has not been served")
        closed = _closed_at(b.conn, ticket.ticket_id)
        if closed is not None and now - closed > timedelta(hours=self.cfg.rating.max_age_h):
            raise QueueError("too_late", f"{ticket.number} was served more than "
                                         f"{self.cfg.rating.max_age_h:g} h ago")
        if self.rated(b.conn, ticket.ticket_id):
            raise QueueError("already_rated", f"{ticket.number} is rated already")
        counter = ticket.counter or (ticket.history[-1] if ticket.history else None)
        detail = {"service": ticket.service, "counter": counter, "level": str(level),
                  "reason": reason}
        case_id = None
        if level.bad:
            case_id = self.cases.open_callback(b, now, detail, ticket_id=ticket.ticket_id,
                                               number=ticket.number)
        b.conn.execute("INSERT INTO r_ratings (ticket_id, level, reason, source, rated_at, "
                       "case_id) VALUES (?, ?, ?, ?, ?, ?)",
                       (ticket.ticket_id, str(level), reason, str(source), now.isoformat(),
                        case_id))
        b.emit(EventType.RATING, {"ticket_id": ticket.ticket_id, "number": ticket.number,
                                  "source": str(source), "label": level.label, "bad": level.bad,
                                  "case_id": case_id, **detail})
        return {"ok": True, "ticket_id": ticket.ticket_id, "number": ticket.number,
                "level": str(level), "case_id": case_id}

    @staticmethod
    def rated(conn: sqlite3.Connection, ticket_id: str) -> bool:
        return conn.execute("SELECT 1 FROM r_ratings WHERE ticket_id = ?",
                            (ticket_id,)).fetchone() is not None

    @staticmethod
    def today(conn: sqlite3.Connection, day: str) -> dict[str, int]:
        """Ratings per level given today (for the status)."""
        return {str(level): n for level, n in conn.execute(
            "SELECT level, count(*) FROM r_ratings WHERE substr(rated_at, 1, 10) = ? "
            "GROUP BY level", (day,))}


def _closed_at(conn: sqlite3.Connection, ticket_id: str) -> datetime | None:
    row = conn.execute("SELECT closed_at FROM q_tickets WHERE ticket_id = ?",
                       (ticket_id,)).fetchone()
    return datetime.fromisoformat(row[0]) if row and row[0] else None
