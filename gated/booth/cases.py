"""Assistance requests, "办不成事找局长" escalations and rating callbacks (回访): open items that
someone must answer.

Both are rows in ``b_cases`` so they survive restarts and appear in the status until closed.
An assist request (elderly visitor, assist button, guard flag) lights the zone's assist lamp and
waits for a guard's ``assist_ack``; unanswered after ``priority.assist_escalate_s`` it is raised
again as an alarm, once per period. An escalation carries the ticket, service, waiting time and
the counters the ticket went through, nothing personal; the centre acknowledges it
(``escalation_ack``) and later closes it with an outcome (``escalation_close``); unacknowledged
it is raised again every ``priority.escalation_reraise_s``.
A callback is opened by a bad rating (不满意, 非常不满意): it carries the ticket, service, counter,
level and reason tag, nothing personal; the centre acknowledges it (``callback_ack``), records
the call (``callback_done``: state ``called_back``) and closes it with an outcome
(``callback_close``); until it is called back it is raised again every
``rating.callback_reraise_s``.
Sensitive reasons (disability, pregnancy) are never written here: a case only says "assist".
"""

from __future__ import annotations

import enum
import json
import sqlite3
from datetime import datetime, timedelta
from typing import Any

import structlog

from gated.config import GatedConfig
from gated.state import Batch, EventType, new_event_id

log = structlog.get_logger(__name__)


class CaseKind(enum.StrEnum):
    ASSIST = "assist"
    ESCALATION = "escalation"
    CALLBACK = "callback"


class CaseState(enum.StrEnum):
    OPEN = "open"
    ACKED = "acked"
    CALLED_BACK = "called_back"  # callbacks only: the citizen was called
    CLOSED = "closed"


#: States in which an unanswered case is raised again, per kind.
_RERAISED: dict[CaseKind, tuple[str, ...]] = {
    CaseKind.ASSIST: ("open",), CaseKind.ESCALATION: ("open",),
    CaseKind.CALLBACK: ("open", "acked")}


class CaseError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def ensure_schema(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE IF NOT EXISTS b_cases (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, zone TEXT,
        ticket_id TEXT, number TEXT, detail TEXT NOT NULL DEFAULT '{}', opened_at TEXT NOT NULL,
        raised_at TEXT NOT NULL, raises INTEGER NOT NULL DEFAULT 1, acked_by TEXT,
        outcome TEXT)""")
    db.execute("CREATE INDEX IF NOT EXISTS b_cases_open ON b_cases (state, kind)")


class Cases:
    def __init__(self, cfg: GatedConfig) -> None:
        self.cfg = cfg

    def open_assist(self, b: Batch, now: datetime, *, zone: str | None, reason: str,
                    ticket_id: str | None = None, number: str | None = None) -> str:
        """``reason`` is one of the neutral PriorityReason values, never the sensitive kind."""
        case_id = new_event_id()
        detail = {"reason": reason}
        self._insert(b.conn, case_id, CaseKind.ASSIST, zone, ticket_id, number, detail, now)
        b.emit(EventType.ASSIST_REQUEST, {"case_id": case_id, "zone": zone, "reason": reason,
                                          "ticket_id": ticket_id, "number": number, "raises": 1})
        return case_id

    def open_escalation(self, b: Batch, now: datetime, detail: dict[str, Any], *,
                        ticket_id: str | None, number: str | None) -> str:
        case_id = new_event_id()
        self._insert(b.conn, case_id, CaseKind.ESCALATION, None, ticket_id, number, detail, now)
        b.emit(EventType.ESCALATION, {"case_id": case_id, "state": "open", "ticket_id": ticket_id,
                                      "number": number, "raises": 1, **detail})
        return case_id

    def open_callback(self, b: Batch, now: datetime, detail: dict[str, Any], *,
                      ticket_id: str, number: str) -> str:
        """A bad rating's follow-up case; ``detail`` has service, counter, level, reason."""
        case_id = new_event_id()
        self._insert(b.conn, case_id, CaseKind.CALLBACK, None, ticket_id, number, detail, now)
        b.emit(EventType.CALLBACK, {"case_id": case_id, "state": "open", "ticket_id": ticket_id,
                                    "number": number, "raises": 1, **detail})
        return case_id

    def called_back(self, b: Batch, case_id: str, by: str, note: str) -> None:
        """The citizen of a callback case was called (from open or acknowledged)."""
        row = self._get(b.conn, case_id, CaseKind.CALLBACK)
        if row["state"] not in (CaseState.OPEN, CaseState.ACKED):
            raise CaseError(f"already_{row['state']}")
        b.conn.execute("UPDATE b_cases SET state = 'called_back', acked_by = coalesce(acked_by, "
                       "?) WHERE id = ?", (by, case_id))
        b.emit(EventType.CALLBACK, {"case_id": case_id, "state": "called_back", "by": by,
                                    "note": note, "number": row["number"]})

    def open_from_button(self, b: Batch, now: datetime, device: str) -> str | None:
        """The escalation button: one unanswered case per button. Presses while the last one
        is still open add nothing (it is raised again on its own schedule), so a visitor
        pressing ten times, or a child playing, sends the centre one escalation. Returns the
        new case's id, or None."""
        row = b.conn.execute(
            "SELECT id FROM b_cases WHERE state = 'open' AND kind = ? AND number IS NULL "
            "AND json_extract(detail, '$.source') = 'button' "
            "AND json_extract(detail, '$.device') = ?",
            (str(CaseKind.ESCALATION), device)).fetchone()
        if row is not None:
            log.info("escalation_button_repeat", device=device, case_id=row[0])
            return None
        return self.open_escalation(b, now, {"source": "button", "device": device},
                                    ticket_id=None, number=None)

    def ack(self, b: Batch, case_id: str, kind: CaseKind, by: str) -> dict[str, Any]:
        row = self._get(b.conn, case_id, kind)
        if row["state"] != CaseState.OPEN:
            raise CaseError(f"already_{row['state']}")
        b.conn.execute("UPDATE b_cases SET state = 'acked', acked_by = ? WHERE id = ?",
                       (by, case_id))
        if kind is CaseKind.ASSIST:
            b.emit(EventType.ASSIST_ACK, {"case_id": case_id, "by": by, "zone": row["zone"]})
        elif kind is CaseKind.CALLBACK:
            b.emit(EventType.CALLBACK, {"case_id": case_id, "state": "acked", "by": by,
                                        "number": row["number"]})
        else:
            b.emit(EventType.ESCALATION, {"case_id": case_id, "state": "acked", "by": by,
                                          "number": row["number"]})
        return row

    def close(self, b: Batch, case_id: str, kind: CaseKind, outcome: str) -> None:
        row = self._get(b.conn, case_id, kind)
        if row["state"] == CaseState.CLOSED:
            raise CaseError("already_closed")
        b.conn.execute("UPDATE b_cases SET state = 'closed', outcome = ? WHERE id = ?",
                       (outcome, case_id))
        if kind is CaseKind.ESCALATION:
            b.emit(EventType.ESCALATION, {"case_id": case_id, "state": "closed",
                                          "outcome": outcome, "number": row["number"]})
        elif kind is CaseKind.CALLBACK:
            b.emit(EventType.CALLBACK, {"case_id": case_id, "state": "closed",
                                        "outcome": outcome, "number": row["number"]})
        else:
            b.emit(EventType.ASSIST_ACK, {"case_id": case_id, "closed": True, "zone": row["zone"]})

    def reraise_due(self, b: Batch, now: datetime) -> int:
        """Raise again every open case nobody answered within its period."""
        n = 0
        periods = {CaseKind.ASSIST: self.cfg.priority.assist_escalate_s,
                   CaseKind.ESCALATION: self.cfg.priority.escalation_reraise_s,
                   CaseKind.CALLBACK: self.cfg.rating.callback_reraise_s}
        for kind, period in periods.items():
            cutoff = (now - timedelta(seconds=period)).isoformat()
            states = _RERAISED[kind]
            rows = b.conn.execute(
                "SELECT id, zone, ticket_id, number, detail, raises, opened_at, state FROM "
                f"b_cases WHERE state IN ({','.join('?' * len(states))}) AND kind = ? "
                "AND raised_at <= ?", (*states, str(kind), cutoff))
            for case_id, zone, ticket_id, number, detail, raises, opened, state in rows.fetchall():
                b.conn.execute("UPDATE b_cases SET raised_at = ?, raises = raises + 1 "
                               "WHERE id = ?", (now.isoformat(), case_id))
                waited = round((now - datetime.fromisoformat(opened)).total_seconds())
                extra = json.loads(detail)
                if "state" in extra:  # cases opened before 0.2 kept the ticket's state so
                    extra["ticket_state"] = extra.pop("state")
                payload = {"case_id": case_id, "ticket_id": ticket_id, "number": number,
                           "raises": raises + 1, "unanswered_s": waited, **extra}
                if kind is CaseKind.ASSIST:
                    b.emit(EventType.ALARM, {"kind": "assist_unanswered", "zone": zone,
                                             **payload})
                elif kind is CaseKind.CALLBACK:
                    b.emit(EventType.CALLBACK, {**payload, "state": state, "reraised": True})
                else:
                    b.emit(EventType.ESCALATION, {"state": "open", "reraised": True, **payload})
                n += 1
        return n

    @staticmethod
    def open_cases(conn: sqlite3.Connection, kind: CaseKind | None = None,
                   limit: int = -1) -> list[dict[str, Any]]:
        """Cases not closed, oldest first; ``limit`` of them (-1: all)."""
        sql = ("SELECT id, kind, state, zone, ticket_id, number, opened_at, raises FROM b_cases "
               "WHERE state != 'closed'")
        args: tuple[str, ...] = ()
        if kind is not None:
            sql += " AND kind = ?"
            args = (str(kind),)
        keys = ("case_id", "kind", "state", "zone", "ticket_id", "number", "opened_at", "raises")
        return [dict(zip(keys, r, strict=True)) for r in conn.execute(
            sql + " ORDER BY rowid LIMIT ?", (*args, limit))]

    @staticmethod
    def open_counts(conn: sqlite3.Connection) -> dict[str, int]:
        """Cases not closed, by kind (every kind, zeros included)."""
        counts = dict.fromkeys((str(k) for k in CaseKind), 0)
        counts.update(conn.execute("SELECT kind, count(*) FROM b_cases WHERE state != 'closed' "
                                   "GROUP BY kind").fetchall())
        return counts

    @staticmethod
    def open_assists_in(conn: sqlite3.Connection, zone: str | None) -> int:
        return int(conn.execute("SELECT count(*) FROM b_cases WHERE kind = 'assist' AND "
                                "state = 'open' AND zone IS ?", (zone,)).fetchone()[0])

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _insert(conn: sqlite3.Connection, case_id: str, kind: CaseKind, zone: str | None,
                ticket_id: str | None, number: str | None, detail: dict[str, Any],
                now: datetime) -> None:
        conn.execute("INSERT INTO b_cases (id, kind, state, zone, ticket_id, number, detail, "
                     "opened_at, raised_at) VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?)",
                     (case_id, str(kind), zone, ticket_id, number,
                      json.dumps(detail, ensure_ascii=False), now.isoformat(), now.isoformat()))

    @staticmethod
    def _get(conn: sqlite3.Connection, case_id: str, kind: CaseKind) -> dict[str, Any]:
        row = conn.execute("SELECT state, zone, number FROM b_cases WHERE id = ? AND kind = ?",
                           (case_id, str(kind))).fetchone()
        if row is None:
            raise CaseError(f"unknown_{kind}")
        return {"state": row[0], "zone": row[1], "number": row[2]}
