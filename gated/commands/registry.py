"""One registry for every command a booth accepts, from the centre (MQTT) or the local CLI.

``dispatch`` never raises: every command gets a reply, ``{"ok": true, ...}`` or
``{"ok": false, "reason": "<slug>", "message": "..."}``.

Payload (MQTT ``cmd/<name>``, and what ``gated ctl`` sends over the local socket)::

    {"args": {...}, "ts": 1795000000123, "nonce": "9f0c...", "sig": "<hex>"}

Commands registered with ``signed=True`` (anything that can let someone through: open a gate,
change a zone mode, issue a manual ticket, arm a guest registration) must, when they come from
MQTT, be signed as ``docs/signing.md`` specifies (``gated.commands.signing``): ``sig`` is the
hex HMAC-SHA256 under the command key (``mqtt.command_key_file``) of the canonical JSON of
``{"args": args, "name": name, "nonce": nonce, "ts": ts}``; ``ts`` (integer milliseconds;
float seconds for one more release) within ``mqtt.command_max_skew_s`` of the booth's clock;
a ``nonce`` (8-64 printable ASCII characters) the booth has never accepted before (nonces are
kept in SQLite, so a restart does not reopen a replay window; they are pruned after twice the
skew, when their timestamp alone rejects them). Anything else is refused (``unsigned``,
``malformed``, ``bad_signature``, ``stale``, ``replayed``, ``no_command_key``) and becomes a
``security`` event. ``sign_command`` builds such a payload for the centre's tools.

Commands registered with ``local_only=True`` (a whole list from a file) are refused over MQTT
as ``local_only``, before their payload is even parsed: the centre has its own list topics,
which check versions and checksums, and a 64 MiB command must not be accepted from the network.

The local control socket (``source="local"``) is trusted: it is root/gated-group only, and
whoever can open it owns the box, so no signature is asked for there.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from gated.commands.audit import RefusalAudit
from gated.commands.signing import (
    SignatureProblem,
    TsForm,
    check_nonce,
    sign_command,
    signable_problem,
    signature,
    signature_matches,
    ts_form,
    ts_seconds,
)
from gated.state import EventType, StorageError
from gated.wire import PayloadError, loads_object

if TYPE_CHECKING:
    from gated.state import Batch, StateLoop

log = structlog.get_logger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any]]
LOCAL = "local"
_HEX_KEY = re.compile(rb"(?:[0-9A-Fa-f]{2})+")


@dataclass(frozen=True)
class _Command:
    handler: Handler
    signed: bool
    local_only: bool
    max_bytes: int | None  # None: the registry's limit (``mqtt.command_max_bytes``)
    audit: bool  # emit a ``command`` event; False for read-only queries
    help: str


__all__ = ["CommandRegistry", "load_command_key", "sign_command", "signature"]


def load_command_key(path: os.PathLike[str] | str | None) -> bytes | None:
    """The HMAC key file; None when not configured or unreadable (logged).

    As ``docs/signing.md`` says: the file's bytes with ASCII whitespace stripped at both ends;
    if what remains is pairs of hex digits (either case, nothing else), the key is the bytes
    they spell, otherwise it is those bytes themselves."""
    if path is None:
        return None
    try:
        raw = Path(path).read_bytes().strip()
    except OSError as e:
        log.error("command_key_unreadable", path=str(path), error=str(e))
        return None
    if raw and _HEX_KEY.fullmatch(raw):
        return bytes.fromhex(raw.decode("ascii"))
    return raw


class CommandRegistry:
    def __init__(self) -> None:
        self._commands: dict[str, _Command] = {}
        self._key: bytes | None = None
        self._skew = 30.0
        self._max_bytes = 16 * 1024
        self._loop: StateLoop | None = None
        self.audit = RefusalAudit()
        self.register("help", lambda a: {"ok": True, "commands": self.help()}, audit=False,
                      help="list the commands and their arguments")

    @staticmethod
    def ensure_schema(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS cmd_nonces (nonce TEXT PRIMARY KEY, "
                   "ts REAL NOT NULL)")

    def register(self, name: str, handler: Handler, *, signed: bool = False,
                 local_only: bool = False, max_bytes: int | None = None, audit: bool = True,
                 help: str = "") -> None:
        """``max_bytes`` overrides the registry's limit for a command that carries data (a
        list import); ``audit=False`` for read-only queries, which leave no event."""
        self._commands[name] = _Command(handler, signed, local_only, max_bytes, audit, help)

    def configure(self, *, key: bytes | None, max_skew_s: float, loop: StateLoop,
                  max_bytes: int = 16 * 1024) -> None:
        """(Re)configure; the first call with a loop also schedules the refusal summaries."""
        if self._loop is not loop:
            loop.every(self.audit.window_s, self._report_refusals)
        self._key, self._skew, self._max_bytes, self._loop = key, max_skew_s, max_bytes, loop

    def help(self) -> dict[str, str]:
        return {n: (("[signed] " if c.signed else "[local] " if c.local_only else "") + c.help)
                for n, c in sorted(self._commands.items())}

    # ------------------------------------------------------------------ dispatch
    def dispatch(self, name: str, raw: bytes, *, source: str,
                 actor: dict[str, str] | None = None) -> dict[str, Any]:
        """Run one command and answer it. ``actor`` (local commands only: who at the booth
        did it, e.g. the hall's counter and clerk) is kept in the ``command`` audit event."""
        cmd = self._commands.get(name)
        if cmd is None:
            return self._refuse(name, source, "unknown_command", f"no command {name[:64]!r}")
        if cmd.local_only and source != LOCAL:
            return self._refuse(name, source, "local_only",
                                f"{name} is accepted from the local CLI only")
        limit = cmd.max_bytes or self._max_bytes
        if len(raw) > limit:
            return self._refuse(name, source, "too_large", f"{len(raw)} > {limit} bytes")
        try:
            payload = loads_object(raw)
        except PayloadError as e:  # empty, not JSON, too deep, numbers out of range
            return self._refuse(name, source, "malformed",
                                f"{e}; a command is {{\"args\": {{...}}}}")
        if not isinstance(payload.get("args", {}), dict):
            return self._refuse(name, source, "malformed", "payload must be {\"args\": {...}}")
        args: dict[str, Any] = payload.get("args", {})
        legacy = False
        if cmd.signed and source != LOCAL:
            problem = self._check_signature(name, args, payload)
            if isinstance(problem, tuple):
                return self._refuse(name, source, *problem)
            legacy = problem is TsForm.LEGACY_SECONDS
        try:
            reply = cmd.handler(args)
        except Exception as e:  # every command gets a reply, even when its handler breaks
            log.exception("command_handler_failed", command=name, error=str(e))
            reply = {"ok": False, "reason": "handler_error", "message": str(e)}
        ok = bool(reply.get("ok", False))
        if cmd.audit:
            self._emit(EventType.COMMAND, {"name": name, "source": source, "ok": ok,
                                           **({} if ok else {"reason": reply.get("reason")}),
                                           **({"actor": actor} if actor else {}),
                                           **({"legacy_ts": True} if legacy else {})})
        return reply

    def _check_signature(self, name: str, args: dict[str, Any],
                         payload: dict[str, Any]) -> tuple[str, str] | TsForm:
        """The refusal (reason, message), or the form of ``ts`` of a command that passed."""
        if self._key is None:
            return "no_command_key", "this booth has no command key; signed commands refused"
        sig, ts, nonce = payload.get("sig"), payload.get("ts"), payload.get("nonce")
        if not isinstance(sig, str) or not sig:
            return "unsigned", "signature required"
        try:
            form = ts_form(ts)
            nonce = check_nonce(nonce)
            problem = signable_problem(args) if form is TsForm.MILLISECONDS else None
        except SignatureProblem as e:
            return e.reason, str(e)
        if problem is not None:
            return "malformed", f"{problem} (see docs/signing.md)"
        assert isinstance(ts, int | float)
        if not signature_matches(self._key, name, args, ts, nonce, sig):
            return "bad_signature", "signature does not match"
        seconds = ts_seconds(ts, form)
        if abs(time.time() - seconds) > self._skew:
            return "stale", f"timestamp off by more than {self._skew:g} s"
        if form is TsForm.LEGACY_SECONDS:
            log.warning("command_legacy_ts", command=name,
                        message="ts in float seconds is deprecated: sign integer milliseconds")
        claimed = self._claim_nonce(nonce, seconds)
        return form if claimed is None else claimed

    def _claim_nonce(self, nonce: str, ts: float) -> tuple[str, str] | None:
        """Insert the nonce on the state thread: None when claimed, else the refusal.

        A nonce is claimed or not, never "maybe": on a timeout the claim is withdrawn and the
        command refused as busy (the centre may resend it with the same nonce).
        """
        if self._loop is None:
            return "unavailable", "commands are not ready yet"
        skew = self._skew

        def claim(b: Batch) -> bool:
            b.conn.execute("DELETE FROM cmd_nonces WHERE ts < ?", (time.time() - 2 * skew,))
            cur = b.conn.execute("INSERT OR IGNORE INTO cmd_nonces (nonce, ts) VALUES (?, ?)",
                                 (nonce, ts))
            return cur.rowcount == 1
        try:
            claimed = bool(self._loop.call_wait(claim, timeout=5.0))
        except FutureTimeout:
            return "busy", "state thread did not answer"
        except (StorageError, sqlite3.Error) as e:  # a full or broken disk: refuse
            log.error("nonce_claim_failed", error=str(e))
            return "unavailable", "cannot record the nonce"
        return None if claimed else ("replayed", "nonce already used")

    def refuse(self, name: str, source: str, reason: str, message: str) -> dict[str, Any]:
        """A refusal decided before dispatch, by the transport (the uplink refuses a response
        topic outside the booth's own): answered and audited like the registry's own."""
        return self._refuse(name, source, reason, message)

    def _refuse(self, name: str, source: str, reason: str, message: str) -> dict[str, Any]:
        """Answer a refusal; one from outside is audited (see ``gated.commands.audit``)."""
        first = None
        if source != LOCAL and reason not in ("busy", "unavailable"):
            first = self.audit.note(reason, source, name)
            if first is not None:
                self._emit(EventType.SECURITY, first)
        (log.warning if first is not None or source == LOCAL else log.debug)(
            "command_refused", command=name[:64], source=source, reason=reason)
        return {"ok": False, "reason": reason, "message": message}

    def _report_refusals(self, b: Batch) -> None:
        for payload in self.audit.due():
            log.warning("commands_refused", **{k: payload[k] for k in ("source", "reason",
                                                                       "count")})
            b.emit(EventType.SECURITY, payload)

    def _emit(self, etype: EventType, payload: dict[str, Any]) -> None:
        if self._loop is not None:
            self._loop.post(lambda b: b.emit(etype, payload))
