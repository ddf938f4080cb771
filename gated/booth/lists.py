"""Local lists from the centre: staff badges, appointments, the alert list.

Each list is versioned and kept in SQLite, so it survives restarts and works with the network
down; an in-memory index built from the tables gives the pure policy O(1) lookups (50,000
entries load in well under a second on a Pi). Only the state thread reads or changes it.

Wire format (MQTT ``sync/<list>``, ``gated lists import FILE``), JSON objects:

- snapshot: ``{"list": "staff_badges", "version": 7, "entries": [...], "checksum": "<hex>"}``
- delta: ``{"list": ..., "base_version": 7, "version": 8, "upserts": [...], "deletes": [keys],
  "checksum": "<hex>"}``; applies only on top of ``base_version`` (else ``version_gap``: ask for
  a snapshot).
- chunked snapshot: ``{"list", "version", "chunk": i, "chunks": n, "entries": [...part...],
  "checksum": <of the whole entries list>}``, assembled by ``SnapshotAssembler``.

``checksum`` is the SHA-256 hex of the canonical JSON (``sort_keys``, separators ``,`` ``:``,
UTF-8 unescaped) of the entries list, or of ``{"deletes": [...], "upserts": [...]}`` for a delta.
Entries (key field first):

- staff_badges: ``{"uid": "04A1B2C3", "zones": ["office"], "revoked": false, "label": "staff",
  "valid_until": "2027-12-31" | null}`` (``label`` is a role, never a name);
- appointments: ``{"ref": "R123", "pseudonym": "<hex>", "service": "social", "zone": "office",
  "day": "2026-11-23", "start": "09:30", "end": "10:00", "priority": false}``;
- alerts: ``{"key": "<pseudonym or badge uid>", "level": "watch|revoked|banned_notice",
  "code": "<opaque>"}``.

Pseudonyms are ``gated.identity.id_pseudonym(site_key, number)`` (HMAC-SHA256 of "id:"+number
under the site key): the centre computes them with the same key; no ID number is ever sent.
A list that fails any check is rejected whole and the old one stays. The caller applies
changes inside its transaction and registers ``batch.on_rollback(lists.reload)``.
"""

from __future__ import annotations

import enum
import hashlib
import json
import sqlite3
import time as _time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from typing import TYPE_CHECKING, Any

from gated.state import EventType

if TYPE_CHECKING:
    from gated.state import Batch

MAX_ENTRIES = 200_000


class ListKind(enum.StrEnum):
    STAFF_BADGES = "staff_badges"
    APPOINTMENTS = "appointments"
    ALERTS = "alerts"


class AlertLevel(enum.StrEnum):
    WATCH = "watch"
    REVOKED = "revoked"
    BANNED_NOTICE = "banned_notice"


class ListError(Exception):
    """A list update refused whole; ``reason`` is a slug (``bad_checksum``, ``version_gap``...)."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason


@dataclass(frozen=True)
class StaffBadge:
    uid: str
    zones: tuple[str, ...] = ()
    revoked: bool = False
    label: str = ""
    valid_until: date | None = None


@dataclass(frozen=True)
class Appointment:
    ref: str
    pseudonym: str
    service: str
    zone: str
    day: date
    start: time
    end: time
    priority: bool = False


@dataclass(frozen=True)
class AlertEntry:
    key: str
    level: AlertLevel
    code: str = ""


KEY_FIELD = {ListKind.STAFF_BADGES: "uid", ListKind.APPOINTMENTS: "ref", ListKind.ALERTS: "key"}


def canonical(obj: object) -> bytes:
    """The one JSON form that is hashed or signed (list checksums, command signatures)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entries_checksum(entries: list[dict[str, Any]]) -> str:
    return hashlib.sha256(canonical(entries)).hexdigest()


def delta_checksum(upserts: list[dict[str, Any]], deletes: list[str]) -> str:
    return hashlib.sha256(canonical({"deletes": deletes, "upserts": upserts})).hexdigest()


def parse_entry(kind: ListKind, e: object, index: int = 0) -> StaffBadge | Appointment | AlertEntry:
    """Validate one wire entry; ``ListError("malformed", ...)`` names the index and field."""
    if not isinstance(e, dict):
        raise ListError("malformed", f"entry {index} is not an object")
    field = KEY_FIELD[kind]
    try:
        if kind is ListKind.STAFF_BADGES:
            uid = _str(e, "uid").upper()
            bytes.fromhex(uid)
            zones = e.get("zones", [])
            if not isinstance(zones, list) or not all(isinstance(z, str) for z in zones):
                field = "zones"
                raise ValueError("zones must be a list of strings")
            until = e.get("valid_until")
            field = "valid_until"
            return StaffBadge(uid, tuple(zones), bool(e.get("revoked", False)),
                              str(e.get("label", "")),
                              date.fromisoformat(until) if until else None)
        if kind is ListKind.APPOINTMENTS:
            out = Appointment(_str(e, "ref"), _str(e, "pseudonym"), _str(e, "service"),
                              _str(e, "zone"), date.fromisoformat(_str(e, "day")),
                              time.fromisoformat(_str(e, "start")),
                              time.fromisoformat(_str(e, "end")), bool(e.get("priority", False)))
            if out.end <= out.start:
                field = "end"
                raise ValueError("end is not after start")
            return out
        field = "level"
        return AlertEntry(_str(e, "key"), AlertLevel(_str(e, "level")), str(e.get("code", "")))
    except (KeyError, ValueError, TypeError) as exc:
        raise ListError("malformed", f"entry {index} ({field}): {exc}") from None


def _str(e: dict[str, Any], key: str) -> str:
    value = e[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def parse_snapshot(obj: object) -> tuple[ListKind, int, list[dict[str, Any]], str]:
    """A snapshot object as sent by the centre or written to a file for ``gated lists import``."""
    if not isinstance(obj, dict):
        raise ListError("malformed", "a snapshot is a JSON object")
    try:
        kind = ListKind(str(obj.get("list")))
    except ValueError:
        raise ListError("unknown_list", f"list must be one of {[str(k) for k in ListKind]}") \
            from None
    version, entries, checksum = obj.get("version"), obj.get("entries"), obj.get("checksum")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ListError("malformed", "version must be a non-negative integer")
    if not isinstance(entries, list):
        raise ListError("malformed", "entries must be a list")
    if not isinstance(checksum, str):
        raise ListError("malformed", "checksum must be a hex string")
    return kind, version, entries, checksum


class Lists:
    """The three lists: SQLite tables plus an in-memory index, on the state thread only."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._badges: dict[str, StaffBadge] = {}
        self._appts: dict[str, Appointment] = {}
        self._by_person: dict[tuple[str, date], list[Appointment]] = defaultdict(list)
        self._alerts: dict[str, AlertEntry] = {}
        self._versions: dict[str, int] = {}
        self.reload()

    @staticmethod
    def ensure_schema(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS list_entries (list TEXT NOT NULL, key TEXT NOT "
                   "NULL, body TEXT NOT NULL, PRIMARY KEY (list, key))")
        db.execute("CREATE TABLE IF NOT EXISTS list_versions (list TEXT PRIMARY KEY, version "
                   "INTEGER NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)")

    # ------------------------------------------------------------------ lookups
    def staff_badge(self, uid: str) -> StaffBadge | None:
        return self._badges.get(uid.upper())

    def appointments(self, pseudonym: str, day: date) -> list[Appointment]:
        return list(self._by_person.get((pseudonym, day), ()))

    def appointment(self, ref: str) -> Appointment | None:
        return self._appts.get(ref)

    def alert(self, key: str) -> AlertEntry | None:
        return self._alerts.get(key) if key else None

    def versions(self) -> dict[str, int]:
        """Safe from any thread: one dict lookup per list, each atomic under the GIL."""
        return {str(k): self._versions.get(str(k), 0) for k in ListKind}

    def counts(self) -> dict[str, int]:
        return {ListKind.STAFF_BADGES: len(self._badges), ListKind.APPOINTMENTS: len(self._appts),
                ListKind.ALERTS: len(self._alerts)}

    # ------------------------------------------------------------------ changes
    def apply_in(self, b: Batch, change: Callable[[], None], *, kind: str, version: Any,
                 entries: int, source: str, op: str = "snapshot") -> ListError | None:
        """Run ``change`` (``apply_snapshot``/``apply_delta``) in the state thread's batch and
        report it as a ``list.sync`` event; return the refusal, or None when applied.

        Every ``ListError`` (stale, gap, checksum, malformed entry) is raised before anything is
        written, so a refusal is answered here, with its event in the same batch: raising it
        out of the item would roll back and re-run the other items of the batch and rebuild a
        200,000-entry index for nothing. Anything else raises and rolls back; the in-memory
        index is then rebuilt from SQLite.
        """
        b.on_rollback(self.reload)
        try:
            change()
        except ListError as e:
            report_refused(b, kind=kind, version=version, reason=e.reason, source=source)
            return e
        b.emit(EventType.LIST_SYNC, {"list": kind, "version": version, "op": op, "ok": True,
                                     "entries": entries, "source": source})
        return None

    def apply_snapshot(self, kind: ListKind, version: int, entries: list[dict[str, Any]],
                       checksum: str) -> None:
        current = self._versions.get(str(kind), 0)
        if version < current:
            raise ListError("stale_version", f"have {current}, got {version}")
        if len(entries) > MAX_ENTRIES:
            raise ListError("too_large", f"{len(entries)} entries, at most {MAX_ENTRIES}")
        if entries_checksum(entries) != checksum:
            raise ListError("bad_checksum", f"{kind} version {version}")
        parsed = [parse_entry(kind, e, i) for i, e in enumerate(entries)]
        self._conn.execute("DELETE FROM list_entries WHERE list = ?", (str(kind),))
        self._write(kind, parsed, entries)
        self._set_version(kind, version, checksum)
        self._clear(kind)
        for entry in parsed:
            self._index(entry)
        self._versions[str(kind)] = version

    def apply_delta(self, kind: ListKind, base_version: int, version: int,
                    upserts: list[dict[str, Any]], deletes: list[str], checksum: str) -> None:
        current = self._versions.get(str(kind), 0)
        if base_version != current:
            raise ListError("version_gap", f"have {current}, delta is {base_version}->{version}")
        if version <= base_version:
            raise ListError("stale_version", f"delta {base_version}->{version}")
        if delta_checksum(upserts, deletes) != checksum:
            raise ListError("bad_checksum", f"{kind} delta to {version}")
        if not all(isinstance(k, str) for k in deletes):
            raise ListError("malformed", "deletes must be a list of keys")
        parsed = [parse_entry(kind, e, i) for i, e in enumerate(upserts)]
        if kind is ListKind.STAFF_BADGES:
            deletes = [k.upper() for k in deletes]
        self._conn.executemany("DELETE FROM list_entries WHERE list = ? AND key = ?",
                               [(str(kind), k) for k in deletes])
        self._write(kind, parsed, upserts)
        self._set_version(kind, version, checksum)
        for key in deletes:  # small deltas must not cost a full rebuild on the state thread
            self._unindex(kind, key)
        for entry in parsed:
            self._unindex(kind, getattr(entry, KEY_FIELD[kind]))
            self._index(entry)
        self._versions[str(kind)] = version

    def reload(self) -> None:
        """Rebuild the index from SQLite (at start, and after a rolled-back transaction)."""
        badges: dict[str, StaffBadge] = {}
        appts: dict[str, Appointment] = {}
        people: dict[tuple[str, date], list[Appointment]] = defaultdict(list)
        alerts: dict[str, AlertEntry] = {}
        self._badges, self._appts, self._by_person, self._alerts = badges, appts, people, alerts
        for lst, body in self._conn.execute("SELECT list, body FROM list_entries"):
            self._index(parse_entry(ListKind(lst), json.loads(body)))
        self._versions = {k: int(v) for k, v in self._conn.execute(
            "SELECT list, version FROM list_versions")}

    def _clear(self, kind: ListKind) -> None:
        if kind is ListKind.STAFF_BADGES:
            self._badges = {}
        elif kind is ListKind.ALERTS:
            self._alerts = {}
        else:
            self._appts, self._by_person = {}, defaultdict(list)

    def _index(self, entry: StaffBadge | Appointment | AlertEntry) -> None:
        if isinstance(entry, StaffBadge):
            self._badges[entry.uid] = entry
        elif isinstance(entry, Appointment):
            self._appts[entry.ref] = entry
            self._by_person[(entry.pseudonym, entry.day)].append(entry)
        else:
            self._alerts[entry.key] = entry

    def _unindex(self, kind: ListKind, key: str) -> None:
        if kind is ListKind.STAFF_BADGES:
            self._badges.pop(key.upper(), None)
        elif kind is ListKind.ALERTS:
            self._alerts.pop(key, None)
        else:
            old = self._appts.pop(key, None)
            if old is not None:
                slot = self._by_person.get((old.pseudonym, old.day), [])
                slot[:] = [a for a in slot if a.ref != key]

    def _write(self, kind: ListKind, parsed: list[Any], raw: list[dict[str, Any]]) -> None:
        field = KEY_FIELD[kind]
        rows = []
        for p, r in zip(parsed, raw, strict=True):
            key = getattr(p, field)
            rows.append((str(kind), key, json.dumps({**r, field: key}, ensure_ascii=False)))
        self._conn.executemany("INSERT OR REPLACE INTO list_entries (list, key, body) "
                               "VALUES (?, ?, ?)", rows)

    def _set_version(self, kind: ListKind, version: int, checksum: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO list_versions (list, version, checksum, "
                           "applied_at) VALUES (?, ?, ?, datetime('now'))",
                           (str(kind), version, checksum))


def report_refused(b: Batch, *, kind: str, version: Any, reason: str, source: str) -> None:
    """The ``list.sync`` event of a list change that was refused; the old list stays."""
    b.emit(EventType.LIST_SYNC, {"list": kind, "version": version, "ok": False,
                                 "reason": reason, "source": source})


@dataclass(frozen=True)
class Incomplete:
    """A chunked snapshot given up on: not every chunk arrived within the timeout."""

    kind: str
    version: int
    received: int
    chunks: int


class SnapshotAssembler:
    """Collects the chunks of large snapshots; bounded in entries and in age.

    A snapshot whose chunks do not all arrive within ``timeout_s`` of its first one is
    dropped; ``expire`` says which, so the centre is told (``incomplete``)."""

    def __init__(self, timeout_s: float = 300.0, max_entries: int = MAX_ENTRIES) -> None:
        self.timeout_s = timeout_s
        self.max_entries = max_entries
        self._parts: dict[str, tuple[int, int, str, float, dict[int, list[Any]]]] = {}

    def next_expiry(self) -> float | None:
        """Monotonic time at which the oldest held snapshot expires; None when none is held
        (the rpc worker then sleeps until a message comes, instead of waking to check)."""
        if not self._parts:
            return None
        return min(v[3] for v in self._parts.values()) + self.timeout_s

    def expire(self, now: float | None = None) -> list[Incomplete]:
        """Drop and return the snapshots that are past their time."""
        now = _time.monotonic() if now is None else now
        late = [k for k, v in self._parts.items() if now - v[3] >= self.timeout_s]
        out = []
        for kind in late:
            version, n, _, _, parts = self._parts.pop(kind)
            out.append(Incomplete(kind, version, len(parts), n))
        return out

    def add(self, chunk: object) -> tuple[ListKind, int, list[dict[str, Any]], str] | None:
        """Add one chunk; returns the whole snapshot once every chunk arrived."""
        if not isinstance(chunk, dict):
            raise ListError("malformed", "a chunk is a JSON object")
        kind, version, entries, checksum = parse_snapshot(chunk)
        i, n = chunk.get("chunk"), chunk.get("chunks")
        if not (isinstance(i, int) and isinstance(n, int) and 0 <= i < n <= 10_000):
            raise ListError("malformed", "chunk and chunks must satisfy 0 <= chunk < chunks")
        now = _time.monotonic()
        held = self._parts.get(str(kind))
        if held is None or held[:3] != (version, n, checksum):
            held = (version, n, checksum, now, {})
            self._parts[str(kind)] = held
        held[4][i] = entries
        if sum(len(p) for p in held[4].values()) > self.max_entries:
            del self._parts[str(kind)]
            raise ListError("too_large", f"more than {self.max_entries} entries")
        if len(held[4]) < n:
            return None
        del self._parts[str(kind)]
        whole = [e for k in range(n) for e in held[4][k]]
        return kind, version, whole, checksum
