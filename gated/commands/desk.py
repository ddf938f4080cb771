"""The commands of the hall's front desk: counters pausing, 好差评 ratings and their callback
cases (回访), and the display's notice line. Registered by ``register_commands`` with its
helpers: ``reg`` (the registry's register, guarded) and ``on_state`` (run on the state thread,
answer refusals)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gated.booth import BoothLogic, CaseKind, RatingSource, clean_notice
from gated.booth import notice as booth_notice
from gated.commands.args import ArgError, arg, text
from gated.config import RatingLevel
from gated.state import Batch, EventType

Handler = Callable[[dict[str, Any]], dict[str, Any]]
OnState = Callable[[Callable[[Batch], dict[str, Any]]], dict[str, Any]]


def register_desk(reg: Callable[..., None], on_state: OnState, booth: BoothLogic) -> None:
    def pause(paused: bool) -> Handler:
        def handler(a: dict[str, Any]) -> dict[str, Any]:
            counter = str(arg(a, "counter", (str, int)))

            def job(b: Batch) -> dict[str, Any]:
                changed = booth.queue.set_paused(b.conn, counter, paused)
                state = "paused" if paused else "open"
                if changed:
                    b.emit(EventType.COUNTER, {"counter": counter, "state": state})
                return {"ok": True, "counter": counter, "state": state, "changed": changed}
            return on_state(job)
        return handler
    reg("pause_counter", pause(True), help="counter=<id>: calls nobody until resumed")
    reg("resume_counter", pause(False), help="counter=<id>")


    # ---------------------------------------------------------------- ratings and callbacks
    def rate(a: dict[str, Any]) -> dict[str, Any]:
        ticket = arg(a, "ticket", str)
        try:
            level = RatingLevel(arg(a, "level", str))
        except ValueError:
            raise ArgError("bad_level", f"level must be one of {[str(v) for v in RatingLevel]}") \
                from None
        reason = a.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise ArgError("bad_reason", "reason must be a text tag")
        try:
            source = RatingSource(a.get("source", "pad"))
        except ValueError:
            raise ArgError("bad_source", "source must be pad or qr") from None
        return on_state(lambda b: booth.ratings.rate(b, ticket, level, reason or None, source,
                                                     booth.now()))
    reg("rate", rate, help="ticket=<id or number> level=very_satisfied|satisfied|basic|"
                           "dissatisfied|very_dissatisfied [reason=<tag>] [source=pad|qr]")
    reg("callback_ack", lambda a: on_state(lambda b: _case_ack(
        b, booth, arg(a, "case_id", str), CaseKind.CALLBACK, str(a.get("by", "centre")))),
        signed=True, help="case_id=<id> [by=<who>]: someone will call the citizen back")
    reg("callback_done", lambda a: on_state(lambda b: _called_back(
        b, booth, arg(a, "case_id", str), str(a.get("by", "centre")),
        text(a, "note", required=False))), signed=True,
        help="case_id=<id> [note=<text>]: called back")
    reg("callback_close", lambda a: on_state(lambda b: _case_close(
        b, booth, arg(a, "case_id", str), CaseKind.CALLBACK, text(a, "outcome"))),
        signed=True, help="case_id=<id> outcome=<text>")

    # ---------------------------------------------------------------- the hall display
    def set_notice(a: dict[str, Any]) -> dict[str, Any]:
        text = clean_notice(arg(a, "text", str))
        by = str(a.get("by", "guard"))[:64]

        def job(b: Batch) -> dict[str, Any]:
            booth_notice.set_notice(b, text, by, booth.now())
            return {"ok": True, "text": text}
        return on_state(job)
    reg("set_notice", set_notice, help='text=<one line, at most 200 characters; "" clears>')


def _case_ack(b: Batch, booth: BoothLogic, case_id: str, kind: CaseKind,
              by: str) -> dict[str, Any]:
    booth.cases.ack(b, case_id, kind, by)
    return {"ok": True, "case_id": case_id}


def _called_back(b: Batch, booth: BoothLogic, case_id: str, by: str,
                 note: str) -> dict[str, Any]:
    booth.cases.called_back(b, case_id, by, note)
    return {"ok": True, "case_id": case_id}


def _case_close(b: Batch, booth: BoothLogic, case_id: str, kind: CaseKind,
                outcome: str) -> dict[str, Any]:
    booth.cases.close(b, case_id, kind, outcome)
    return {"ok": True, "case_id": case_id}
