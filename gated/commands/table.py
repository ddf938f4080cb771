"""The commands a booth understands, from the centre (MQTT) and from the local CLI alike.

Each handler is a blocking callable run on the caller's thread (paho's command worker or the
control socket); it marshals its work onto the state thread with ``loop.call`` and waits for the
commit, so a reply of ``ok`` means the change is durable and its events are in the outbox.
Every failure becomes ``{"ok": False, "reason": slug, "message": text}``; nothing raises.
``signed=True`` marks every command that can let someone through (open a gate, zone mode, manual
ticket, guest registration): over MQTT they need an HMAC signature. ``local_only=True`` marks
the list import from a file, which the centre replaces with its list topics.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol

import structlog

from gated.booth import (
    BoothLogic,
    CaseError,
    CaseKind,
    ListError,
    ListKind,
    Lists,
    QueueError,
    TicketState,
    parse_snapshot,
    test_ticket_document,
)
from gated.commands.args import ArgError
from gated.commands.args import arg as _arg
from gated.commands.desk import register_desk
from gated.commands.registry import CommandRegistry
from gated.config import GatedConfig, ZoneMode
from gated.policy import AssistKind, PriorityReason
from gated.state import Batch, EventType, StateLoop

log = structlog.get_logger(__name__)

CALL_TIMEOUT_S = 5.0
LIST_IMPORT_MAX_BYTES = 64 * 1024 * 1024  # a whole list from a file (``gated lists import``)
Handler = Callable[[dict[str, Any]], dict[str, Any]]


class Host(Protocol):
    """What the commands need of the daemon that runs them, beyond the state thread, the booth
    and the lists (``gated.app.daemon.Daemon`` is one): its current config, its status, a
    config reload, and a way to ask the centre for list snapshots."""

    @property
    def cfg(self) -> GatedConfig: ...

    def status(self) -> dict[str, Any]: ...

    def reload(self) -> dict[str, Any]: ...

    def request_sync(self, kinds: list[str]) -> str | None:
        """Ask the centre for these lists; None when asked, else why not (a reason slug)."""


def register_commands(registry: CommandRegistry, host: Host, *, loop: StateLoop,
                      booth: BoothLogic, lists: Lists) -> None:
    """Register every command on ``registry``; called once the daemon's parts exist."""

    def on_state(fn: Callable[[Batch], dict[str, Any]]) -> dict[str, Any]:
        def job(b: Batch) -> dict[str, Any]:
            # Refusals are raised before anything is written, so answering them here (rather
            # than failing the item) neither logs an error nor leaves half a change behind.
            try:
                return fn(b)
            except (QueueError, CaseError, ArgError) as e:
                return {"ok": False, "reason": e.reason, "message": str(e)}
        try:
            result: dict[str, Any] = loop.call_wait(job, timeout=CALL_TIMEOUT_S)
        except FutureTimeout:
            return {"ok": False, "reason": "busy", "message": "state thread did not answer"}
        return result

    def reg(name: str, fn: Handler, *, signed: bool = False, local_only: bool = False,
            audit: bool = True, max_bytes: int | None = None, help: str = "") -> None:
        registry.register(name, _guarded(name, fn), signed=signed, local_only=local_only,
                            audit=audit, max_bytes=max_bytes, help=help)

    # ---------------------------------------------------------------- status and config
    reg("get_status", lambda a: {"ok": True, "status": host.status()}, audit=False,
        help="full booth status")
    reg("reload_config", lambda a: host.reload(), help="re-read the config file")

    # ---------------------------------------------------------------- gates and zones
    def open_gate(a: dict[str, Any]) -> dict[str, Any]:
        zone = _zone(host.cfg, a)
        hold = bool(a.get("hold", False))

        def job(b: Batch) -> dict[str, Any]:
            gates = booth.gates.open_zone(b, zone, reason=f"command:{a.get('by', 'centre')}",
                                          hold=hold)
            return {"ok": bool(gates), "gates": gates,
                    **({} if gates else {"reason": "no_gate", "message": f"no gate in {zone}"})}
        return on_state(job)
    reg("open_gate", open_gate, signed=True, help="zone=<zone> [hold=true]")

    def set_zone_mode(a: dict[str, Any]) -> dict[str, Any]:
        zone = _zone(host.cfg, a)
        try:
            mode = ZoneMode(_arg(a, "mode", str))
        except ValueError:
            raise ArgError("bad_mode", f"mode must be one of {[str(m) for m in ZoneMode]}") \
                from None

        def job(b: Batch) -> dict[str, Any]:
            booth.gates.set_zone_mode(b, zone, mode, by=str(a.get("by", "centre")))
            return {"ok": True, "zone": zone, "mode": str(mode)}
        return on_state(job)
    reg("set_zone_mode", set_zone_mode, signed=True,
        help="zone=<zone> mode=normal|free_passage|locked")

    # ---------------------------------------------------------------- tickets
    def print_test_ticket(a: dict[str, Any]) -> dict[str, Any]:
        def job(b: Batch) -> dict[str, Any]:
            printer = booth.printing.print_raw(b, test_ticket_document(host.cfg))
            if printer is None:
                return {"ok": False, "reason": "no_printer_ready"}
            return {"ok": True, "printer": printer}
        return on_state(job)
    reg("print_test_ticket", print_test_ticket, help="print a sample ticket")

    def manual_ticket(a: dict[str, Any]) -> dict[str, Any]:
        service = a.get("service")
        priority = a.get("priority")
        if priority is not None and priority not in {str(p) for p in PriorityReason}:
            raise ArgError("bad_priority", f"priority must be one of "
                                           f"{[str(p) for p in PriorityReason]}")

        def job(b: Batch) -> dict[str, Any]:
            dec = booth.manual_ticket(b, service, priority)
            return {"ok": True, "decision": dec.public()}
        return on_state(job)
    # A manual ticket opens the hall gate: signed, like open_gate.
    reg("manual_ticket", manual_ticket, signed=True,
        help="[service=<id>] [priority=guard|military|...]")

    reg("reprints", lambda a: on_state(
        lambda b: {"ok": True, "reprints": booth.printing.pending(b.conn)}),
        audit=False, help="tickets waiting to be reprinted")
    reg("reprint_handed", lambda a: on_state(
        lambda b: booth.printing.handed(b, _arg(a, "ticket", str))),
        help="ticket=<number or id>: the guard wrote it by hand")

    # ---------------------------------------------------------------- calling
    def calling(name: str) -> Handler:
        def handler(a: dict[str, Any]) -> dict[str, Any]:
            counter = str(_arg(a, "counter", (str, int)))
            services = a.get("services")
            if services is not None and not (isinstance(services, list) and
                                             all(isinstance(s, str) for s in services)):
                raise ArgError("bad_services", "services must be a list of service ids")
            target = _arg(a, "service", str) if name == "transfer" else None

            def job(b: Batch) -> dict[str, Any]:
                now = booth.now()
                q = booth.queue
                if name == "call_next":
                    done = q.current_or_none(b.conn, counter)
                    t = q.call_next(b.conn, counter, services, now)
                    q.touch_counter(b.conn, counter, services, now)
                    if done is not None:  # call_next closes the current ticket as served
                        b.emit(EventType.TICKET_CLOSED, {"action": "served", "counter": counter,
                                                         "by": "call_next",
                                                         **q.get(b.conn, done.ticket_id).public()})
                    if t is None:
                        return {"ok": True, "ticket": None, "message": "nobody waiting"}
                elif name == "recall":
                    t = q.recall(b.conn, counter)
                elif name == "transfer":
                    assert target is not None
                    t = q.transfer(b.conn, counter, target)
                else:
                    state = TicketState.SERVED if name == "served" else TicketState.NO_SHOW
                    t = q.close(b.conn, counter, state, now)
                etype = (EventType.TICKET_CALLED if name in ("call_next", "recall")
                         else EventType.TICKET_CLOSED)
                b.emit(etype, {"action": name, "counter": counter, **t.public()})
                return {"ok": True, "ticket": t.public()}
            return on_state(job)
        return handler
    for name, help in (("call_next", "counter=<id> [services=[..]]"),
                       ("recall", "counter=<id>"), ("no_show", "counter=<id>"),
                       ("served", "counter=<id>"), ("transfer", "counter=<id> service=<id>")):
        reg(name, calling(name), help=help)

    register_desk(reg, on_state, booth)

    reg("queue_stats", lambda a: on_state(
        lambda b: {"ok": True, "services": booth.queue.stats(b.conn, booth.now().date())}),
        audit=False, help="per-service waiting, served, no-shows, waits")

    # ---------------------------------------------------------------- assistance
    def assist(a: dict[str, Any]) -> dict[str, Any]:
        try:
            kind = AssistKind(a.get("kind", "other"))
        except ValueError:
            raise ArgError("bad_kind", f"kind must be one of {[str(k) for k in AssistKind]}") \
                from None
        return on_state(then(lambda: booth.next_tap.press_assist(kind), {
            "ok": True, "message": "the next card or manual ticket gets priority help"}))
    reg("assist", assist, help="assist button: kind=disability|pregnancy|other")

    def flag_priority(a: dict[str, Any]) -> dict[str, Any]:
        try:
            reason = PriorityReason(a.get("reason", "guard"))
        except ValueError:
            raise ArgError("bad_reason", "reason must be military or guard") from None
        return on_state(then(lambda: booth.next_tap.flag_priority(reason), {"ok": True}))
    reg("flag_priority", flag_priority,
        help="the guard flags the next visitor: reason=military|guard")

    def register_guest(a: dict[str, Any]) -> dict[str, Any]:
        zone = _zone(host.cfg, a)
        minutes = float(a.get("minutes", 120))
        if not 0 < minutes <= 24 * 60:
            raise ArgError("bad_minutes", "minutes must be between 1 and 1440")
        return on_state(then(lambda: booth.next_tap.arm_guest(zone, minutes), {
            "ok": True, "message": "the next ID card tapped is registered as a guest"}))
    reg("register_guest", register_guest, signed=True,
        help="zone=<zone> [minutes=120]: next card is a guest")

    reg("assist_ack", lambda a: on_state(lambda b: booth.assist_ack(
        b, _arg(a, "case_id", str), str(a.get("by", "guard")))), help="case_id=<id> [by=<who>]")
    reg("escalate", lambda a: on_state(lambda b: booth.escalate(
        b, a.get("number"), str(a.get("source", "guard")))),
        help="[number=<ticket number>]: 办不成事找局长")
    reg("escalation_ack", lambda a: on_state(lambda b: _ack(
        b, booth, _arg(a, "case_id", str), str(a.get("by", "centre")))), signed=True,
        help="case_id=<id>")
    reg("escalation_close", lambda a: on_state(lambda b: _close(
        b, booth, _arg(a, "case_id", str), _arg(a, "outcome", str))), signed=True,
        help="case_id=<id> outcome=<text>")

    # ---------------------------------------------------------------- lists
    def lists_import(a: dict[str, Any]) -> dict[str, Any]:
        try:
            kind, version, entries, checksum = parse_snapshot(a.get("snapshot"))
        except ListError as e:
            return {"ok": False, "reason": e.reason, "message": str(e)}

        def job(b: Batch) -> dict[str, Any]:
            refused = lists.apply_in(
                b, lambda: lists.apply_snapshot(kind, version, entries, checksum),
                kind=str(kind), version=version, entries=len(entries), source="local")
            if refused is not None:
                return {"ok": False, "reason": refused.reason, "message": str(refused)}
            return {"ok": True, "list": str(kind), "version": version, "entries": len(entries)}
        return on_state(job)
    reg("lists_import", lists_import, local_only=True, max_bytes=LIST_IMPORT_MAX_BYTES,
        help="snapshot=<list snapshot object>")

    def sync_lists(a: dict[str, Any]) -> dict[str, Any]:
        wanted = a.get("list")
        if wanted is not None and wanted not in {str(k) for k in ListKind}:
            raise ArgError("unknown_list", f"list must be one of {[str(k) for k in ListKind]}")
        kinds = [wanted] if wanted else [str(k) for k in ListKind]
        versions = lists.versions()
        refused = host.request_sync(kinds)
        if refused is not None:
            return {"ok": False, "reason": refused, "versions": versions}
        return {"ok": True, "requested": kinds, "versions": versions}
    reg("sync_lists", sync_lists, help="[list=staff_badges|appointments|alerts]: ask the centre "
                                       "for snapshots")


# --------------------------------------------------------------------------- helpers


def then(action: Callable[[], None], reply: dict[str, Any]) -> Callable[[Batch], dict[str, Any]]:
    """A state-thread job that runs ``action`` (booth flags belong to the state thread) and
    answers ``reply``."""
    def job(b: Batch) -> dict[str, Any]:
        action()
        return reply
    return job


def _guarded(name: str, fn: Handler) -> Handler:
    def run(args: dict[str, Any]) -> dict[str, Any]:
        try:
            return fn(args)
        except ArgError as e:
            return {"ok": False, "reason": e.reason, "message": str(e)}
        except (TypeError, ValueError, KeyError) as e:
            log.warning("command_bad_args", command=name, error=str(e))
            return {"ok": False, "reason": "bad_args", "message": str(e)}
    return run


def _zone(cfg: GatedConfig, a: dict[str, Any]) -> str:
    zone = _arg(a, "zone", str)
    if zone not in cfg.zones:
        raise ArgError("unknown_zone", f"unknown zone {zone!r}; known: {sorted(cfg.zones)}")
    return str(zone)


def _ack(b: Batch, booth: Any, case_id: str, by: str) -> dict[str, Any]:
    booth.cases.ack(b, case_id, CaseKind.ESCALATION, by)
    return {"ok": True, "case_id": case_id}


def _close(b: Batch, booth: Any, case_id: str, outcome: str) -> dict[str, Any]:
    booth.cases.close(b, case_id, CaseKind.ESCALATION, outcome)
    return {"ok": True, "case_id": case_id}
