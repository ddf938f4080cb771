"""Guests of the office area, registered by the guard for the next ID card tapped.

``register_guest`` arms the registration (``NextTap.arm_guest``); the next ID card within the
assist window becomes a guest of that zone for the given minutes, from that very tap on. Guests
live in ``b_guests`` by pseudonym only, are looked up by primary key on each tap, and expired
ones are deleted at local midnight.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from gated.state import Batch, EventType


def ensure_schema(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS b_guests (pseudonym TEXT PRIMARY KEY, zone TEXT, "
               "until TEXT)")


def register(b: Batch, pseudonym: str, zone: str, minutes: float, now: datetime) -> None:
    until = now + timedelta(minutes=minutes)
    b.conn.execute("INSERT OR REPLACE INTO b_guests (pseudonym, zone, until) VALUES (?,?,?)",
                   (pseudonym, zone, until.isoformat()))
    b.emit(EventType.COMMAND, {"name": "register_guest", "pseudonym": pseudonym, "zone": zone,
                               "until": until.isoformat()})


def lookup(conn: sqlite3.Connection, pseudonym: str,
           now: datetime) -> dict[str, tuple[str, datetime]]:
    """``{pseudonym: (zone, until)}`` for a guest still valid at ``now``, else ``{}``."""
    if not pseudonym:
        return {}
    return {p: (z, datetime.fromisoformat(u)) for p, z, u in conn.execute(
        "SELECT pseudonym, zone, until FROM b_guests WHERE pseudonym = ? AND until > ?",
        (pseudonym, now.isoformat()))}


def purge_expired(conn: sqlite3.Connection, now: datetime) -> None:
    conn.execute("DELETE FROM b_guests WHERE until <= ?", (now.isoformat(),))
