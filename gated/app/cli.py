"""The ``gated`` command. Exit codes: 0 ok, 1 failure, 2 usage, 78 configuration problem."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gated import __version__
from gated.config import DEFAULT_CONFIG_PATH, ConfigError

if TYPE_CHECKING:  # the daemon's model loads every driver's settings: `gated hall` never does
    from gated.config import GatedConfig

EX_CONFIG = 78


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["centre"]:  # its own parser: argparse cannot pass options on whole
        return _centre(argparse.Namespace(rest=argv[1:]))
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
        return code
    except ConfigError as e:
        print(e, file=sys.stderr)
        return EX_CONFIG
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gated", description="Gate booth daemon")
    p.add_argument("--version", action="version", version=f"gated {__version__}")
    sub = p.add_subparsers(metavar="COMMAND")

    def cmd(name: str, help: str, func: Any, config: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        if config:
            sp.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG_PATH,
                            help=f"config file (default {DEFAULT_CONFIG_PATH})")
        sp.set_defaults(func=func)
        return sp

    cmd("run", "run the daemon (systemd runs this)", _run)
    sp = cmd("check-config", "validate a config file and the files it names; lists every "
             "problem", _check, config=False)
    sp.add_argument("file", type=Path, nargs="?", default=DEFAULT_CONFIG_PATH)
    sp.add_argument("--no-files", action="store_true",
                    help="check the file's own values only, not the keys and directories it "
                         "names (for a config written away from the booth)")
    sp = cmd("simulate", "run the real daemon against simulated devices", _simulate, False)
    sp.add_argument("--dir", type=Path, default=Path("gated-sim"),
                    help="where state, config and printed tickets go (default ./gated-sim)")
    sp.add_argument("--visitors-per-min", type=float, default=12.0)
    sp.add_argument("--duration", type=float, default=0.0, help="seconds; 0 = until Ctrl-C")
    sp.add_argument("--mqtt", default="127.0.0.1:1883",
                    help="broker host:port, or 'off' (events wait in the outbox either way)")
    sp.add_argument("--seed", type=int, default=None)
    sp.add_argument("--hall", default="127.0.0.1:8080",
                    help="where the hall's screens listen (host:port), or 'off'")
    sp = cmd("probe", "find the devices plugged into this box and print config tables for "
             "them (only reads: never switches a relay or prints)", _probe, config=False)
    sp.add_argument("--port", action="append", dest="ports", metavar="PORT",
                    help="probe this serial port (repeatable; default: every port listed)")
    sp.add_argument("--modbus-ids", default="1-16", help="Modbus slave ids to ask (1-16)")
    sp.add_argument("--modbus-baud", action="append", type=int, dest="modbus_bauds",
                    help="Modbus baud rate to try (repeatable; default 9600)")
    sp.add_argument("--camera", action="append", dest="cameras", metavar="SOURCE",
                    help="camera to try (repeatable; default: every /dev/video*)")
    sp.add_argument("--no-usb", action="store_true", help="do not list USB devices")
    sp.add_argument("-o", "--output", type=Path, help="write the config tables here")
    sp = cmd("selftest", "try one configured device by hand (stop gated first): pulse a "
             "gate, print a test ticket, read a card, a camera's decode rate", _selftest)
    sp.add_argument("device", help="the name of its [devices.<name>] table")
    sp.add_argument("--yes", action="store_true", help="pulse a gate without asking")
    sp.add_argument("--wait", type=float, default=30.0, help="seconds to wait for a card")
    sp.add_argument("--seconds", type=float, default=5.0, help="camera: seconds to watch")
    sp = cmd("hall", "the hall's screens: web service for display, counters, rating, guard",
             _hall)
    sp.add_argument("action", nargs="?", choices=["serve", "passwd"], default="serve",
                    help="serve (default) | passwd: print the salted hash of a PIN for "
                         "[hall.users.<id>] secret")
    sp.add_argument("--stdin", action="store_true", help="passwd: read the PIN from stdin")
    cmd("status", "show the running daemon's status", _status)
    sp = cmd("outbox", "inspect the event outbox", _outbox)
    sp.add_argument("action", choices=["stats", "peek", "dead"])
    sp.add_argument("--limit", type=int, default=10)
    sp.add_argument("--json", action="store_true")
    sp = cmd("keygen", "create the site key used for pseudonyms", _keygen, config=False)
    sp.add_argument("file", type=Path)
    sp = cmd("ctl", "send a command to the running daemon (e.g. call_next counter=3)", _ctl)
    sp.add_argument("name")
    sp.add_argument("params", nargs="*", metavar="KEY=VALUE")
    sp = cmd("lists", "import a list snapshot file (staff_badges, appointments, alerts)", _lists)
    sp.add_argument("action", choices=["import"])
    sp.add_argument("file", type=Path)
    sp = cmd("monitor", "live table of every booth on a broker", _monitor, config=False)
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=1883)
    sp.add_argument("--site", default="+")
    sp.add_argument("--once", action="store_true", help="print one snapshot and exit")
    sp.add_argument("--wait", type=float, default=2.0, help="seconds to collect for --once")
    sp.add_argument("--username", default=None, help="broker user (e.g. the centre's)")
    sp.add_argument("--password-file", type=Path, default=None)
    sp.add_argument("--ca", type=Path, default=None, help="CA file: connect with TLS")
    sp.add_argument("--cert", type=Path, default=None, help="client certificate (TLS)")
    sp.add_argument("--key", type=Path, default=None, help="client key (TLS)")
    sp = cmd("centre", "the county centre: ingest into PostgreSQL, figures, cases, the desk "
             "(`gated centre -h`; needs the centre extra)", _centre, config=False)
    sp.add_argument("rest", nargs=argparse.REMAINDER, help="a centre command and its arguments")
    return p


def _load(args: argparse.Namespace) -> GatedConfig:
    from gated.config import load_config

    return load_config(args.config)


def _run(args: argparse.Namespace) -> int:
    from gated.app.daemon import Daemon, StartupError
    from gated.app.logs import configure_logging
    from gated.config import check_config
    from gated.state import StorageError

    cfg = check_config(args.config)  # a config that cannot work is refused here, rc 78
    configure_logging(cfg.log.level, cfg.log.format, site=cfg.site.id, booth=cfg.booth.id)
    daemon = Daemon(cfg, config_path=args.config)
    try:
        daemon.start()
    except (StartupError, StorageError) as e:
        print(f"gated: cannot start: {e}", file=sys.stderr)
        daemon.stop()
        return 1
    daemon.run_forever()
    return 0


def _check(args: argparse.Namespace) -> int:
    from gated.config import check_config, load_config

    cfg = load_config(args.file) if args.no_files else check_config(args.file)
    print(f"{args.file}: ok (site {cfg.site.id}, booth {cfg.booth.id}, "
          f"{len(cfg.devices)} device(s), {len(cfg.services)} service(s))")
    return 0


def _ids(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        out += range(int(low), int(high or low) + 1)
    if not out or not all(1 <= i <= 247 for i in out):
        raise SystemExit(f"gated: Modbus ids {spec!r} must lie within 1-247")
    return out


def _probe(args: argparse.Namespace) -> int:
    from drivers.probe import config_sections, run_probe

    findings = run_probe(args.ports, modbus_ids=_ids(args.modbus_ids),
                         modbus_bauds=tuple(args.modbus_bauds or (9600,)),
                         usb=not args.no_usb, cameras=args.cameras)
    for f in findings:
        print(f"{f.where}: {f.summary}", file=sys.stderr)
    if not findings:
        print("gated: nothing answered", file=sys.stderr)
    text = config_sections(findings)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.output}; check it with: gated check-config --no-files "
              f"{args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


def _selftest(args: argparse.Namespace) -> int:
    from gated.app.selftest import run_selftest

    return run_selftest(_load(args), args.device, yes=args.yes, wait_s=args.wait,
                        seconds=args.seconds)


def _simulate(args: argparse.Namespace) -> int:
    from gated.app.simulate import run_simulation

    return run_simulation(args.dir, visitors_per_min=args.visitors_per_min,
                          duration=args.duration, mqtt=args.mqtt, seed=args.seed,
                          hall=None if args.hall == "off" else args.hall)


def _hall(args: argparse.Namespace) -> int:
    from gated.hall import passwd, run_hall

    if args.action == "passwd":
        return passwd(stdin=args.stdin)
    from gated.app.logs import configure_logging
    from gated.config import load_hall_view

    view = load_hall_view(args.config)
    configure_logging(view.log.level, view.log.format, site=view.site.id, booth=view.booth.id)
    return run_hall(view)


def _status(args: argparse.Namespace) -> int:
    """Exit 0 only while the booth serves: 1 when it cannot be reached or is ``faulted``."""
    reply = _call_and_print(_load(args), "get_status", {})
    state = reply.get("status", {}).get("state") if reply and reply.get("ok") else None
    if state != "online":
        print(f"gated: booth state is {state or 'unknown'}", file=sys.stderr)
        return 1
    return 0


def _outbox(args: argparse.Namespace) -> int:
    """Reads the file, so it works with the daemon stopped. ``--json``: ``stats`` prints one
    object; ``peek`` and ``dead`` print JSON lines, one object per event (none when empty)."""
    from gated.state import DB_NAME, open_readonly, read_stats

    cfg = _load(args)
    path = cfg.state_dir / DB_NAME
    if not path.exists():
        print(f"gated: no outbox at {path} (has the daemon run with this state_dir?)",
              file=sys.stderr)
        return 1
    conn = open_readonly(path)
    try:
        if args.action == "stats":
            stats = read_stats(conn).__dict__
            if args.json:
                print(json.dumps(stats, ensure_ascii=False))
            else:
                for k, v in stats.items():
                    print(f"{k:>14}: {v}")
            return 0
        if args.action == "peek":
            rows = conn.execute("SELECT seq, type, priority, attempts, body FROM events "
                                "ORDER BY seq LIMIT ?", (args.limit,)).fetchall()
            total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            items = [{"seq": s, "type": t, "priority": p, "refusals": a, "event": _body(b)}
                     for s, t, p, a, b in rows]
            what = "events waiting"
        else:
            rows = conn.execute("SELECT seq, type, reason, ts, body FROM dead_letter "
                                "ORDER BY seq LIMIT ?", (args.limit,)).fetchall()
            total = conn.execute("SELECT count(*) FROM dead_letter").fetchone()[0]
            items = [{"seq": s, "type": t, "reason": r, "ts": ts, "event": _body(b)}
                     for s, t, r, ts, b in rows]
            what = "dead letters"
    finally:
        conn.close()
    if args.json:
        for item in items:
            print(json.dumps(item, ensure_ascii=False))
        return 0
    print(f"{total} {what}" + (f", the first {len(items)}:" if total > len(items) else
                               (":" if items else "")))
    for item in items:
        extra = item["reason"] if "reason" in item else json.dumps(
            item["event"], ensure_ascii=False)
        print(f"{item['seq']} {item['type']} {extra}")
    return 0


def _body(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _keygen(args: argparse.Namespace) -> int:
    from gated.policy import generate_site_key

    if args.file.exists():
        print(f"gated: {args.file} exists; refusing to overwrite a site key (every pseudonym "
              f"depends on it)", file=sys.stderr)
        return 1
    generate_site_key(args.file)
    print(f"wrote {args.file} (mode 0600); copy the same file to every booth of this site")
    return 0


def parse_params(params: list[str]) -> dict[str, Any]:
    """``["counter=3", "services=[\\"a\\"]"]`` -> {"counter": 3, "services": ["a"]}."""
    out: dict[str, Any] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"gated: expected KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _ctl(args: argparse.Namespace) -> int:
    return _send(_load(args), args.name, parse_params(args.params))


def _lists(args: argparse.Namespace) -> int:
    cfg = _load(args)
    try:
        snapshot = json.loads(args.file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"gated: cannot read {args.file}: {e}", file=sys.stderr)
        return 1
    return _send(cfg, "lists_import", {"snapshot": snapshot})


def _send(cfg: GatedConfig, name: str, params: dict[str, Any]) -> int:
    """One command to the running daemon; exit 1 when it cannot be reached or says no."""
    reply = _call_and_print(cfg, name, params)
    return 0 if reply is not None and reply.get("ok", True) else 1


def _call_and_print(cfg: GatedConfig, name: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """One command through the control socket, its reply printed as JSON; None (and the reason
    on stderr) when the daemon cannot be reached."""
    from gated.control import ControlError, call

    try:
        reply = call(cfg.state_dir, name, params)
    except ControlError as e:
        print(f"gated: {e}", file=sys.stderr)
        return None
    print(json.dumps(reply, ensure_ascii=False, indent=2))
    return reply


def _centre(args: argparse.Namespace) -> int:
    try:
        from gated.centre.cli import main as centre_main
    except ImportError as e:  # psycopg: the centre extra is not installed (a booth)
        print(f"gated centre: {e}; install gated[centre]", file=sys.stderr)
        return 1
    return centre_main(args.rest)


def _monitor(args: argparse.Namespace) -> int:
    from gated.uplink import run_monitor

    return run_monitor(args.host, args.port, site=args.site, once=args.once, wait=args.wait,
                       username=args.username, password_file=args.password_file,
                       ca_file=args.ca, cert_file=args.cert, key_file=args.key)


if __name__ == "__main__":
    raise SystemExit(main())
