"""The booth session: a number that grows with every start of the daemon, never goes back.

Why: the centre must tell a booth's runs apart. A retained last will that the broker
publishes late (after the booth is back, e.g. on a session takeover) would otherwise look
like the booth going offline now; and a restart is otherwise only guessed from an uptime
that went down. Every event envelope, the status and the will carry ``session``; a message
whose session is lower than one already seen from that booth is from an earlier run.

How it survives: the number is kept twice, in ``state_dir/session`` (a line ``<n> <crc32>``,
written to a temporary file, fsync'ed, renamed, directory fsync'ed: a power cut leaves the
old or the new file, never half of one) and in the database's ``meta`` table (key
``session``). A start takes the highest readable copy plus one and writes both before the
first event. A copy that is damaged (bad checksum, not a number) is ignored, not trusted:
a flipped bit must not make the number smaller, and must not make it jump either.

When no copy can be read although the booth has run before (its ``seq.hwm`` or a damaged
session file exists), the count is lost; the new session then starts at the wall clock in
seconds since 1970, which is above any count a booth reaches by restarting, and the
``booth.started`` event says ``session_from: "clock"``. A booth whose clock is also wrong
then could repeat a number: that is the one case not covered, and it is reported.
"""

from __future__ import annotations

import contextlib
import enum
import sqlite3
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import structlog

from gated.state.durable import replace_durably

log = structlog.get_logger(__name__)

SESSION_FILE = "session"
META_KEY = "session"
#: a lost count resumes at the wall clock only when that is plausibly real (after 2024)
_CLOCK_FLOOR_MIN = 1_704_067_200


class SessionSource(enum.StrEnum):
    """Where a start found the previous session number."""

    FIRST = "first"  # a booth that never ran here
    FILE = "file"
    DATABASE = "database"  # the file was missing or damaged; the database copy was used
    CLOCK = "clock"  # every copy was lost: the count resumes at the wall clock


@dataclass(frozen=True)
class Session:
    number: int
    source: SessionSource
    persisted: bool  # False: neither copy could be written (read-only or full disk)


def _encode(n: int) -> str:
    return f"{n} {zlib.crc32(str(n).encode()):08x}\n"


def read_file(path: Path) -> int | None:
    """The number in a session file, or None when missing or damaged."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        log.warning("session_file_unreadable", path=str(path), error=str(e))
        return None
    parts = text.split()
    if len(parts) == 2 and parts[0].isdigit() and _encode(int(parts[0])).split()[1] == parts[1]:
        return int(parts[0])
    log.warning("session_file_damaged", path=str(path))
    return None


def _write_file(path: Path, n: int) -> None:
    replace_durably(path, _encode(n))


def _read_meta(conn: sqlite3.Connection) -> int | None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (META_KEY,)).fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row and isinstance(row[0], int) and row[0] > 0 else None


def claim(state_dir: Path, conn: sqlite3.Connection, *, ran_before: bool,
          clock: float | None = None) -> Session:
    """Take the next session number and persist it (file, then the ``meta`` table).

    ``ran_before``: whether other traces say this booth has run here (a sequence reservation,
    a non-empty outbox), so that a missing count is known to be lost rather than new.
    ``conn`` is the writer's connection, outside any transaction (autocommit).
    """
    path = Path(state_dir) / SESSION_FILE
    from_file, from_db = read_file(path), _read_meta(conn)
    damaged = path.exists() and from_file is None
    known = [n for n in (from_file, from_db) if n is not None]
    if known:
        number = max(known) + 1
        source = SessionSource.FILE if from_file is not None and from_file >= (from_db or 0) \
            else SessionSource.DATABASE
    elif ran_before or damaged:
        now = int(time.time() if clock is None else clock)
        number, source = max(now, _CLOCK_FLOOR_MIN), SessionSource.CLOCK
        log.error("session_count_lost", resumed_at=number,
                  message="no readable session number; resuming at the wall clock")
    else:
        number, source = 1, SessionSource.FIRST
    file_ok = db_ok = True
    try:
        _write_file(path, number)
    except OSError as e:
        file_ok = False
        log.error("session_not_persisted", path=str(path), error=str(e))
        with contextlib.suppress(OSError):
            path.with_name(path.name + ".tmp").unlink()
    try:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                     "SET value = max(value, excluded.value)", (META_KEY, number))
    except sqlite3.Error as e:
        db_ok = False
        log.error("session_not_persisted", where="database", error=str(e))
    return Session(number, source, file_ok or db_ok)
