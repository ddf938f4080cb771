"""Appointment codes checked in today: a code checks in once.

A signed code cannot be forged, but it can be copied: the same screenshot shown by a second
person must not open the office area again. The reference is written here in the same
transaction as the decision that checked it in; the next presentation of it is
``already_checked_in`` (an alarm for the guard; the hall still admits). Rows of earlier days
are deleted at local midnight.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime


def ensure_schema(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS b_checkins (ref TEXT PRIMARY KEY, day TEXT NOT NULL, "
               "at TEXT NOT NULL)")


def checked_in(conn: sqlite3.Connection, ref: str) -> bool:
    return conn.execute("SELECT 1 FROM b_checkins WHERE ref = ?", (ref,)).fetchone() is not None


def record(conn: sqlite3.Connection, ref: str, now: datetime) -> None:
    conn.execute("INSERT OR IGNORE INTO b_checkins (ref, day, at) VALUES (?, ?, ?)",
                 (ref, now.date().isoformat(), now.isoformat()))


def purge_before(conn: sqlite3.Connection, day: date) -> None:
    conn.execute("DELETE FROM b_checkins WHERE day < ?", (day.isoformat(),))
