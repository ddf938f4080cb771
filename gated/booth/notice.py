"""The notice line of the hall's calling display, set by the guard (``set_notice``).

Kept in the state database, so it survives restarts and the hall's web process reads it from
the status; every change is a ``display.notice`` event (with the actor in the command's audit).
The display shows numbers, services and counters only: the guard is told on the console not to
type anyone's name here; the text is cleaned of control characters and bounded.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from datetime import datetime
from typing import Any

from gated.state import Batch, EventType

MAX_NOTICE = 200
_SPACE = re.compile(r"\s+")


def ensure_schema(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE IF NOT EXISTS b_notice (
        id INTEGER PRIMARY KEY CHECK (id = 1), text TEXT NOT NULL, set_at TEXT NOT NULL,
        set_by TEXT NOT NULL)""")


def clean(text: str) -> str:
    """One line of at most ``MAX_NOTICE`` characters; ``ValueError`` when longer. Control and
    format characters go (a pasted newline or a bidi override never reaches the screen)."""
    kept = "".join(" " if ch.isspace() else ch for ch in text
                   if ch.isspace() or unicodedata.category(ch)[0] != "C")
    line = _SPACE.sub(" ", kept).strip()
    if len(line) > MAX_NOTICE:
        raise ValueError(f"the notice has {len(line)} characters; at most {MAX_NOTICE}")
    return line


def set_notice(b: Batch, text: str, by: str, now: datetime) -> None:
    """Set (or, with "", clear) the notice line; ``text`` is already ``clean``."""
    b.conn.execute("INSERT INTO b_notice (id, text, set_at, set_by) VALUES (1, ?, ?, ?) "
                   "ON CONFLICT(id) DO UPDATE SET text = excluded.text, set_at = excluded.set_at,"
                   " set_by = excluded.set_by", (text, now.isoformat(), by))
    b.emit(EventType.NOTICE, {"text": text, "by": by})


def current(conn: sqlite3.Connection) -> dict[str, Any]:
    row = conn.execute("SELECT text, set_at, set_by FROM b_notice WHERE id = 1").fetchone()
    if row is None:
        return {"text": "", "set_at": None, "by": None}
    return {"text": row[0], "set_at": row[1], "by": row[2]}
