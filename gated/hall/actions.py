"""What a page may ask of the daemon: each action, the roles that may do it, and its arguments,
checked here before anything is sent. A bad request gets a 4xx with a reason and never reaches
the daemon. The counter an action applies to is the session's, never the page's word.

Every action becomes one command through the local control socket (the same registry as MQTT
and ``gated ctl``) with the session's actor (role, clerk id, counter) for the audit event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gated.config import HallRole, HallView, RatingLevel
from gated.hall.auth import Session

ADMIN, COUNTER, GUARD = HallRole.ADMIN, HallRole.COUNTER, HallRole.GUARD
CASE_ID_LEN = 40
PRIORITY_REASONS = ("elderly", "assist", "military", "guard")  # policy's PriorityReason


class BadAction(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Action:
    command: str
    roles: frozenset[HallRole]
    fields: dict[str, Callable[[Any, HallView], Any]]  # name -> checker returning the value
    required: frozenset[str] = frozenset()
    counter: bool = False  # the session's counter is the command's counter
    pin: bool = False  # the guard's PIN again (gates and zone modes)
    by: bool = False  # the session's user goes into the command's "by"


def _text(limit: int) -> Callable[[Any, HallView], str]:
    def check(v: Any, _: HallView) -> str:
        if not isinstance(v, str) or len(v) > limit:
            raise ValueError(f"a text of at most {limit} characters")
        return v
    return check


def _choice(values: Callable[[HallView], list[str]] | tuple[str, ...]
            ) -> Callable[[Any, HallView], str]:
    def check(v: Any, view: HallView) -> str:
        allowed = values(view) if callable(values) else list(values)
        if v not in allowed:
            raise ValueError(f"one of {allowed}")
        return str(v)
    return check


def _flag(v: Any, _: HallView) -> bool:
    if not isinstance(v, bool):
        raise ValueError("true or false")
    return v


def _minutes(v: Any, _: HallView) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1440:
        raise ValueError("whole minutes, 1-1440")
    return v


def _services(view: HallView) -> list[str]:
    return list(view.services)


_CASE = {"case_id": _text(CASE_ID_LEN)}
_TICKET = {"ticket": _text(CASE_ID_LEN)}
_ZONE = {"zone": _text(40)}


def _a(command: str, roles: tuple[HallRole, ...], fields: dict[str, Any] | None = None,
       required: tuple[str, ...] = (), **kw: bool) -> Action:
    return Action(command, frozenset(roles), fields or {}, frozenset(required), **kw)


ACTIONS: dict[str, Action] = {
    # the window clerk's calling pad
    "call_next": _a("call_next", (COUNTER, ADMIN), counter=True),
    "recall": _a("recall", (COUNTER, ADMIN), counter=True),
    "served": _a("served", (COUNTER, ADMIN), counter=True),
    "no_show": _a("no_show", (COUNTER, ADMIN), counter=True),
    "transfer": _a("transfer", (COUNTER, ADMIN), {"service": _choice(_services)}, ("service",),
                   counter=True),
    "pause": _a("pause_counter", (COUNTER, ADMIN), counter=True),
    "resume": _a("resume_counter", (COUNTER, ADMIN), counter=True),
    # the guard's console
    "assist_ack": _a("assist_ack", (GUARD, ADMIN), _CASE, ("case_id",), by=True),
    "escalation_ack": _a("escalation_ack", (GUARD, ADMIN), _CASE, ("case_id",), by=True),
    "reprint_handed": _a("reprint_handed", (GUARD, ADMIN), _TICKET, ("ticket",)),
    "manual_ticket": _a("manual_ticket", (GUARD, ADMIN), {
        "service": _choice(_services), "priority": _choice(PRIORITY_REASONS)}),
    "flag_priority": _a("flag_priority", (GUARD, ADMIN), {"reason": _choice(("military",
                                                                             "guard"))}),
    "register_guest": _a("register_guest", (GUARD, ADMIN), {**_ZONE, "minutes": _minutes},
                         ("zone",)),
    "set_notice": _a("set_notice", (GUARD, ADMIN), {"text": _text(200)}, ("text",), by=True),
    "open_gate": _a("open_gate", (GUARD, ADMIN), {**_ZONE, "hold": _flag}, ("zone",), pin=True,
                    by=True),
    "set_zone_mode": _a("set_zone_mode", (GUARD, ADMIN), {
        **_ZONE, "mode": _choice(("normal", "free_passage", "locked"))}, ("zone", "mode"),
        pin=True, by=True),
    # the centre's callbacks (回访), for the hall's head
    "callback_ack": _a("callback_ack", (ADMIN,), _CASE, ("case_id",), by=True),
    "callback_done": _a("callback_done", (ADMIN,), {**_CASE, "note": _text(200)}, ("case_id",),
                        by=True),
    "callback_close": _a("callback_close", (ADMIN,), {**_CASE, "outcome": _text(200)},
                         ("case_id", "outcome")),
    "escalation_close": _a("escalation_close", (ADMIN,), {**_CASE, "outcome": _text(200)},
                           ("case_id", "outcome")),
}


def rating_args(body: dict[str, Any], view: HallView) -> dict[str, Any]:
    """``{"ticket_id", "level", "reason"?}`` of the pad or the ticket QR page, checked."""
    unknown = set(body) - {"ticket_id", "level", "reason"}
    if unknown:
        raise BadAction(400, "unknown_field", f"unknown field(s): {sorted(unknown)}")
    ticket = body.get("ticket_id")
    if not isinstance(ticket, str) or not 1 <= len(ticket) <= CASE_ID_LEN:
        raise BadAction(400, "bad_ticket", "ticket_id must be the ticket's id")
    level = body.get("level")
    if level not in {str(v) for v in RatingLevel}:
        raise BadAction(400, "bad_level", f"level must be one of {[str(v) for v in RatingLevel]}")
    reason = body.get("reason")
    if reason is not None and reason not in view.rating.reasons:
        raise BadAction(400, "bad_reason", f"reason must be one of {view.rating.reasons}")
    out = {"ticket": ticket, "level": level}
    if reason:
        out["reason"] = reason
    return out


def command_for(session: Session | None, body: Any,
                view: HallView) -> tuple[Action, dict[str, Any]]:
    """The checked command of a POST /api/action body ``{"action", "args"}``, or ``BadAction``.
    The PIN, when the action asks for it, stays in the returned args under ``"pin"`` for the
    caller to check and remove."""
    if not isinstance(body, dict) or set(body) - {"action", "args"}:
        raise BadAction(400, "bad_body", 'body must be {"action": name, "args": {...}}')
    name, args = body.get("action"), body.get("args", {})
    action = ACTIONS.get(name) if isinstance(name, str) else None
    if action is None:
        raise BadAction(404, "unknown_action", "no such action")
    if session is None:
        raise BadAction(401, "not_signed_in", "sign in first")
    if session.role not in action.roles:
        raise BadAction(403, "forbidden", f"a {session.role} may not {name}")
    if not isinstance(args, dict):
        raise BadAction(400, "bad_args", "args must be an object")
    allowed = set(action.fields) | ({"pin"} if action.pin else set())
    unknown = set(args) - allowed
    if unknown:
        raise BadAction(400, "unknown_field", f"unknown field(s): {sorted(unknown)}")
    missing = action.required - set(args)
    if missing:
        raise BadAction(400, "missing_field", f"missing field(s): {sorted(missing)}")
    out: dict[str, Any] = {}
    for key, value in args.items():
        if key == "pin":
            if not isinstance(value, str) or not 1 <= len(value) <= 64:
                raise BadAction(400, "bad_pin", "the PIN is required again for this")
            out["pin"] = value
            continue
        try:
            out[key] = action.fields[key](value, view)
        except ValueError as e:
            raise BadAction(400, "bad_field", f"{key}: {e}") from None
    if action.pin and "pin" not in out:
        raise BadAction(400, "pin_required", "enter your PIN again to do this")
    if action.counter:
        if not session.counter:
            raise BadAction(400, "no_counter", "this session is not signed in to a counter")
        out["counter"] = session.counter
    if action.by:
        out["by"] = session.user
    return action, out
