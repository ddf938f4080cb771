"""``gated centre ...``: the county centre's commands. Exit codes: 0 ok, 1 failure, 2 usage,
78 configuration problem (as ``gated`` itself)."""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import socket
import sys
from collections.abc import MutableMapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from gated.centre.cases import sort_case, worklist
from gated.centre.config import (
    DEFAULT_CENTRE_CONFIG,
    CaseList,
    CentreConfig,
    CentreConfigError,
    load_centre_config,
)
from gated.centre.schema import VIEW_NAMES

EX_CONFIG = 78


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _logging()
    import psycopg

    try:
        cfg = load_centre_config(args.config)
        code: int = args.func(cfg, args)
        return code
    except CentreConfigError as e:
        print(e, file=sys.stderr)
        return EX_CONFIG
    except psycopg.Error as e:  # a query of a read command (the schema missing: migrate)
        print(f"gated centre: PostgreSQL: {str(e).strip()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


_ID_SHAPE = re.compile(r"(?<![0-9A-Za-z])[0-9]{6}([0-9]{8})[0-9]{3}[0-9Xx](?![0-9A-Za-z])")


def _mask_ids(logger: Any, name: str, event: MutableMapping[str, Any]
              ) -> MutableMapping[str, Any]:
    """The safety net of the booth's logs here too: anything shaped like an 18-character ID
    number in a log line is masked (a rogue booth's bytes can reach a quarantine detail)."""
    for k, v in event.items():
        if isinstance(v, str) and len(v) >= 18:
            event[k] = _ID_SHAPE.sub(lambda m: m.group(0)[:3] + "*" * 11 + m.group(0)[-4:], v)
    return event


def _logging() -> None:
    """Key-value lines on stderr: JSON when not on a terminal (the journal), readable on one."""
    renderer: Any = (structlog.dev.ConsoleRenderer() if sys.stderr.isatty()
                     else structlog.processors.JSONRenderer(ensure_ascii=False))
    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True), _mask_ids, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr), cache_logger_on_first_use=True)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gated centre", description="the county centre's side: "
                                "ingest into PostgreSQL, figures, cases, the desk")
    p.add_argument("-c", "--config", type=Path, default=DEFAULT_CENTRE_CONFIG,
                   help=f"centre config (default {DEFAULT_CENTRE_CONFIG})")
    sub = p.add_subparsers(metavar="COMMAND")

    def cmd(name: str, help: str, func: Any) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(func=func)
        return sp

    sp = cmd("ingest", "run one ingest worker (N of them share the load)", _ingest)
    sp.add_argument("--name", default=socket.gethostname(),
                    help="this worker's stable name: its MQTT session (default: host name)")
    cmd("migrate", "create or update the tables and views, then exit", _migrate)
    sp = cmd("show", "print a table or view", _show)
    sp.add_argument("view", choices=VIEW_NAMES)
    sp.add_argument("--site")
    sp.add_argument("--limit", type=int, default=200)
    sp.add_argument("--json", action="store_true")
    sp = cmd("cases", "the desk's worklist: cases in their lists, past their limit first",
             _cases)
    sp.add_argument("--list", choices=[str(c) for c in CaseList])
    sp.add_argument("--site")
    sp.add_argument("--all", action="store_true", help="closed cases too")
    sp.add_argument("--json", action="store_true")
    sp = cmd("sort", "put a case into a list (优先办 priority, 持续办 ongoing, 解释办 explain)",
             _sort)
    _case_args(sp)
    sp.add_argument("list", choices=[str(c) for c in CaseList])
    sp.add_argument("--note", default="")
    for name, help in (("ack", "acknowledge an escalation or callback case at its booth"),
                       ("called-back", "record that a callback's citizen was called back"),
                       ("close", "close an escalation or callback case with its outcome")):
        sp = cmd(name, help, _case_command)
        _case_args(sp)
        sp.add_argument("--outcome", help="close: what was done (required)")
        sp.add_argument("--note", default="", help="called-back: what was said")
        sp.add_argument("--kind", choices=["escalation", "callback"],
                        help="when the centre has no event of the case yet")
        sp.add_argument("--timeout", type=float, default=15.0)
        sp.set_defaults(action=name)
    sp = cmd("publish-list", "publish a list snapshot (JSON file) to a booth or a whole site",
             _publish_list)
    sp.add_argument("file", type=Path)
    sp.add_argument("--site", required=True)
    sp.add_argument("--booth", help="one booth; default: every booth of the site")
    sp.add_argument("--wait", type=float, default=5.0,
                    help="seconds to wait for a booth's sync_ack (with --booth)")
    return p


def _case_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("booth", metavar="SITE/BOOTH")
    sp.add_argument("case_id")
    sp.add_argument("--by", default="centre", help="who, for the booth's event and the audit")


def _split(where: str) -> tuple[str, str]:
    site, _, booth = where.partition("/")
    if not site or not booth or "/" in booth:
        raise SystemExit(f"gated centre: {where!r} is not SITE/BOOTH")
    return site, booth


def _connect(cfg: CentreConfig) -> Any:
    import psycopg

    try:
        return psycopg.connect(cfg.conninfo(), autocommit=True, application_name="gated-centre")
    except psycopg.Error as e:
        print(f"gated centre: cannot connect to PostgreSQL: {str(e).strip()}", file=sys.stderr)
        raise SystemExit(1) from None


# ---------------------------------------------------------------------- commands
def _ingest(cfg: CentreConfig, args: argparse.Namespace) -> int:
    from gated.centre.ingest import IngestWorker

    worker = IngestWorker(cfg, args.name)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: worker.stop.set())
    worker.run()
    return 0


def _migrate(cfg: CentreConfig, args: argparse.Namespace) -> int:
    from gated.centre.schema import migrate

    conn = _connect(cfg)
    try:
        migrate(conn, timezone=cfg.timezone)
    finally:
        conn.close()
    print("schema up to date")
    return 0


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    return v


def _show(cfg: CentreConfig, args: argparse.Namespace) -> int:
    conn = _connect(cfg)
    try:
        sql = f"SELECT * FROM {args.view}"  # the name is one of VIEW_NAMES (argparse choices)
        params: list[Any] = []
        if args.site:
            sql += " WHERE site = %s"
            params.append(args.site)
        cur = conn.execute(sql + " LIMIT %s", [*params, args.limit])
        names = [d.name for d in cur.description or []]
        rows = [dict(zip(names, (_jsonable(v) for v in r), strict=True)) for r in cur]
    finally:
        conn.close()
    _print(rows, names, args.json)
    return 0


def _print(rows: list[dict[str, Any]], names: list[str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
        return
    table = [names] + [["" if r[n] is None else str(r[n]) for n in names] for r in rows]
    widths = [min(40, max(len(row[i]) for row in table)) for i in range(len(names))]
    for row in table:
        print("  ".join(c[:40].ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(f"({len(rows)} rows)")


def _cases(cfg: CentreConfig, args: argparse.Namespace) -> int:
    conn = _connect(cfg)
    try:
        items = worklist(conn, cfg, now=datetime.now(UTC), site=args.site,
                         include_closed=args.all,
                         only=CaseList(args.list) if args.list else None)
    finally:
        conn.close()
    rows = [{**i.as_json(), "label": cfg.lists[i.list].label} for i in items]
    if not args.json:
        for r in rows:
            r["list"] = f"{r['label']} {r['list']}"
    names = ["overdue", "deadline", "list", "site", "booth", "case_id", "kind", "state",
             "number", "service", "counter", "level", "opened_at", "sorted_by"]
    _print(rows if args.json else [{n: r[n] for n in names} for r in rows], names, args.json)
    return 0


def _sort(cfg: CentreConfig, args: argparse.Namespace) -> int:
    site, booth = _split(args.booth)
    conn = _connect(cfg)
    try:
        if not sort_case(conn, site, booth, args.case_id, CaseList(args.list), by=args.by,
                         note=args.note):
            print(f"gated centre: no case {args.case_id} of {site}/{booth}", file=sys.stderr)
            return 1
    finally:
        conn.close()
    print(f"{args.case_id}: {cfg.lists[CaseList(args.list)].label} ({args.list})")
    return 0


def _case_command(cfg: CentreConfig, args: argparse.Namespace) -> int:
    from gated.centre.desk import COMMANDS, CaseAction, Desk, DeskError, record

    site, booth = _split(args.booth)
    action = CaseAction(args.action.replace("-", "_"))
    conn = _connect(cfg)
    try:
        kind = args.kind
        if kind is None:
            row = conn.execute("SELECT kind FROM cases WHERE site = %s AND booth = %s AND "
                               "case_id = %s", (site, booth, args.case_id)).fetchone()
            if row is None:
                print(f"gated centre: no case {args.case_id} of {site}/{booth} here; "
                      "give --kind", file=sys.stderr)
                return 1
            kind = row[0]
        name = COMMANDS.get((kind, action))
        if name is None:
            print(f"gated centre: a {kind} case has no {args.action}", file=sys.stderr)
            return 2
        cmd_args: dict[str, Any] = {"case_id": args.case_id}
        if action is CaseAction.CLOSE:
            if not args.outcome:
                print("gated centre: close needs --outcome", file=sys.stderr)
                return 2
            cmd_args["outcome"] = args.outcome
        else:
            cmd_args["by"] = args.by
            if action is CaseAction.CALLED_BACK and args.note:
                cmd_args["note"] = args.note
        reply: dict[str, Any] | None = None
        try:
            with Desk(cfg, args.by) as desk:
                reply = desk.command(site, booth, name, cmd_args, timeout=args.timeout)
        except DeskError as e:
            print(f"gated centre: {e}", file=sys.stderr)
            return 1
        finally:
            record(conn, site, booth, name, cmd_args, args.by, reply)
    finally:
        conn.close()
    print(json.dumps(reply, ensure_ascii=False))
    return 0 if reply.get("ok") else 1


def _publish_list(cfg: CentreConfig, args: argparse.Namespace) -> int:
    from gated.centre.desk import Desk, DeskError, load_json_file

    try:
        doc = load_json_file(args.file)
        with Desk(cfg, "centre") as desk:
            sent, acks = desk.publish_list(doc, args.site, args.booth,
                                           wait_s=args.wait if args.booth else 0.0)
    except DeskError as e:
        print(f"gated centre: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"messages": sent, "acks": acks}, ensure_ascii=False))
    return 0 if not args.booth or any(a.get("ok") for a in acks) else 1
