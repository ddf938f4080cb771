"""``gated simulate``: the real daemon against simulated devices and simulated visitors.

Starts byte-exact simulators on pty pairs (SAM ID-card reader, gate relay board for the hall and
the office, ESC/POS printer that renders tickets to PNG and text), writes a config pointing the
daemon at them (``<dir>/gated.toml``, so IT can read what a working config looks like), creates a
site key, runs the daemon in this process and feeds it a stream of synthetic visitors: ID cards
tapped at the reader (some elderly, some after pressing the assist button), manual tickets from
the guard, people walking through the beam of an opened gate, and two counters calling tickets.
Without a broker the events wait in the outbox under ``<dir>/state``.

With ``hall`` set (``gated simulate --hall 127.0.0.1:8080``, the default), the hall's web
service runs too, as its own process (``gated hall``, as systemd runs it on a booth), with demo
users whose PINs are printed: the calling display, counter terminals, rating pads and the guard
console can be tried in a browser while the simulated clerks call.

Every visitor's card is synthetic (a 测试 name, a valid GB 11643 number); none of it is written
anywhere by the simulator, and the daemon keeps only pseudonyms and masked strings.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

import structlog

from drivers.base import ButtonKind
from gated.config import load_config
from gated.state import DB_NAME, OutboxStats, open_readonly, read_stats

log = structlog.get_logger(__name__)

HALL_ASSIST_INPUT = 4
HALL_ESCALATION_INPUT = 5
#: The hall's demo users: id -> (role, PIN, counters). Printed by ``gated simulate``; a real
#: booth makes its own with ``gated hall passwd``.
DEMO_USERS: dict[str, tuple[str, str, list[str]]] = {
    "c01": ("counter", "1111", []), "g01": ("guard", "2222", []), "adm": ("admin", "3333", [])}


class SimBooth:
    """The simulated devices of one booth plus a config pointing at them.

    ``gated simulate`` runs the daemon in-process against it; tests and ``bench/`` start
    ``gated run -c <config_path>`` as a real process against the same thing.
    """

    def __init__(self, directory: Path, *, mqtt: str = "off", hall: str | None = None) -> None:
        """``hall``: the ``[hall] listen`` address to write, with the demo users; None writes
        no ``[hall]`` section (the daemon does not need one)."""
        self.directory = Path(directory).resolve()
        self.hall_listen = hall
        self.tickets_dir = self.directory / "tickets"
        self.config_path = self.directory / "gated.toml"
        self.mqtt = mqtt
        self._stack = ExitStack()
        self.hall: Any = None
        self.office: Any = None
        self.printer: Any = None
        self.reader: Any = None

    def start(self) -> SimBooth:
        from drivers.modbus_gate.settings import GateInputMap
        from drivers.sim.printer import PrinterSim
        from drivers.sim.relay_board import RelayBoardSim
        from drivers.sim.sam_reader import SamReaderSim
        from gated.policy import generate_site_key

        for d in (self.directory, self.tickets_dir, self.directory / "state"):
            d.mkdir(parents=True, exist_ok=True)
        key = self.directory / "site.key"
        if not key.exists():
            generate_site_key(key)
        try:
            self.hall = self._stack.enter_context(RelayBoardSim(address=1, inputs=GateInputMap(
                assist_button=HALL_ASSIST_INPUT, escalation_button=HALL_ESCALATION_INPUT)))
            self.office = self._stack.enter_context(RelayBoardSim(address=1))
            self.printer = self._stack.enter_context(PrinterSim(self.tickets_dir))
            self.reader = self._stack.enter_context(SamReaderSim())
        except BaseException:
            self._stack.close()
            raise
        text = _config(self.directory, self.hall.port, self.office.port, self.printer.port,
                       self.reader.port, self.mqtt)
        if self.hall_listen:
            text += _hall_config(self.hall_listen)
        self.config_path.write_text(text, encoding="utf-8")
        return self

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> SimBooth:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_simulation(directory: Path, *, visitors_per_min: float = 12.0, duration: float = 0.0,
                   mqtt: str = "127.0.0.1:1883", seed: int | None = None,
                   hall: str | None = "127.0.0.1:8080") -> int:
    """Run until ``duration`` seconds pass (0 = until Ctrl-C); print where everything is.
    ``hall``: where the hall's web process listens (None: not started)."""
    from gated.app.daemon import Daemon
    from gated.app.logs import configure_logging

    rng = random.Random(seed)
    stop = threading.Event()
    with SimBooth(directory, mqtt=mqtt, hall=hall) as sim, ExitStack() as stack:
        cfg = load_config(sim.config_path)
        configure_logging(cfg.log.level, cfg.log.format, site=cfg.site.id, booth=cfg.booth.id)
        daemon = Daemon(cfg, config_path=sim.config_path)
        daemon.start()
        stack.callback(daemon.stop)
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
        stack.callback(signal.signal, signal.SIGINT, previous)
        crowd = Crowd(daemon, sim.reader, {"hall": sim.hall, "office": sim.office}, rng,
                      visitors_per_min)
        threads = [threading.Thread(target=crowd.arrivals, args=(stop,), daemon=True),
                   threading.Thread(target=crowd.clerks, args=(stop,), daemon=True)]
        for t in threads:
            t.start()
        if hall:
            stack.callback(_stop_hall, _start_hall(sim))
        print(f"simulated booth running: config {sim.config_path}, tickets in "
              f"{sim.tickets_dir}; Ctrl-C stops", flush=True)
        if hall:
            users = ", ".join(f"{u} ({r}) PIN {p}" for u, (r, p, _) in DEMO_USERS.items())
            print(f"hall screens: http://{hall}/display  /counter  /rate  /guard "
                  f"(users: {users}); log {sim.directory / 'hall.log'}", flush=True)
        stop.wait(duration if duration > 0 else None)
        stop.set()
        for t in threads:
            t.join(5)
        status = daemon.status()  # the devices as they served, before stopping closes them
        daemon.stop()
        printed = len(list(sim.tickets_dir.glob("*.png")))
        # After the stop: its own events (booth.stopped, devices closing) are in the outbox too,
        # so the figure printed is the one `gated outbox stats` shows next.
        with closing(open_readonly(cfg.state_dir / DB_NAME)) as conn:
            outbox = read_stats(conn)
    print(_summary(sim.directory, sim.config_path, sim.tickets_dir, crowd, printed, status,
                   outbox), flush=True)
    return 0


class Crowd:
    """Synthetic visitors and window clerks driving the simulators and the daemon's commands."""

    def __init__(self, daemon: Any, reader: Any, gates: dict[str, Any], rng: random.Random,
                 per_min: float) -> None:
        self.daemon = daemon
        self.reader = reader
        self.gates = gates
        self.rng = rng
        self.per_min = per_min
        self.visitors = 0
        self.manual = 0
        self.calls = 0

    def arrivals(self, stop: threading.Event) -> None:
        while not stop.wait(self.rng.expovariate(self.per_min / 60.0)):
            try:
                self.visit(stop)
            except Exception as e:  # noqa: BLE001 - a simulator hiccup must not end the demo
                log.warning("sim_visitor_failed", error=repr(e))

    def visit(self, stop: threading.Event) -> None:
        r = self.rng.random()
        cmd = self.daemon.dispatch_local
        if r < 0.1:
            self.manual += 1
            cmd("manual_ticket", {})
        else:
            if r < 0.15:  # the guard's console
                cmd("assist", {"kind": self.rng.choice(["disability", "pregnancy"])})
            elif r < 0.2:  # the push-button on the hall gate
                self.gates["hall"].press(ButtonKind.ASSIST)
            card = synthetic_card(self.rng)
            self.reader.present(card)
            stop.wait(1.2)
            self.reader.remove()
        self.visitors += 1
        gate = self.gates["hall"]
        if stop.wait(1.0):
            return
        if gate.position() > 0.5:  # the arm is up: walk through the beam
            gate.set_beam(True)
            stop.wait(0.6)
            gate.set_beam(False)

    def clerks(self, stop: threading.Event) -> None:
        cmd = self.daemon.dispatch_local
        period = max(3.0, 2 * 60.0 / self.per_min)
        while not stop.wait(self.rng.uniform(0.5, 1.5) * period):
            counter = self.rng.choice(["1", "2"])
            reply = cmd("call_next", {"counter": counter})
            if reply.get("ticket"):
                self.calls += 1


def _start_hall(sim: SimBooth) -> subprocess.Popen[bytes]:
    """``gated hall`` as a process of its own, as on a booth (the daemon never waits for it)."""
    with open(sim.directory / "hall.log", "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "gated.app.cli", "hall", "-c",
                                 str(sim.config_path)], stdout=out, stderr=out)


def _stop_hall(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _hall_config(listen: str) -> str:
    from gated.hall import hash_secret

    lines = ["", "[hall]", f'listen = "{listen}"', "",
             "[hall.counter_names]", '"1" = "1号窗口"', '"2" = "2号窗口"', "",
             "[hall.duty]", *(f'{d} = "值班领导 (示例)"' for d in
                              ("mon", "tue", "wed", "thu", "fri", "sat", "sun")), "",
             "[hall.reception]", 'wed = "09:00-11:30 领导接访 (示例)"', ""]
    for user, (role, pin, counters) in DEMO_USERS.items():
        lines += [f"[hall.users.{user}]", f'role = "{role}"', f'secret = "{hash_secret(pin)}"',
                  f"counters = {counters!r}".replace("'", '"'), ""]
    return "\n".join(lines)


def synthetic_card(rng: random.Random) -> Any:
    """A made-up card: mostly resident cards, a few residence permits and foreigners' cards."""
    from drivers.sim.sam_reader import demo_card

    kind = rng.choices(["resident", "hmt", "f2023"], weights=[90, 6, 4])[0]
    return demo_card(kind, rng)


_ALWAYS = "hours = { " + ", ".join(
    f'{d} = "00:00-24:00"' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")) + " }"


def _config(d: Path, hall: str, office: str, printer: str, reader: str, mqtt: str) -> str:
    host, _, port = mqtt.partition(":")
    enabled = "false" if mqtt == "off" else "true"
    return f"""# Written by `gated simulate`: a working config for the simulated booth.
state_dir = "{d / 'state'}"

[site]
id = "demo-town"
name = "示范镇人民政府"
key_file = "{d / 'site.key'}"

[booth]
id = "sim-booth"
name = "模拟岗亭"

[log]
level = "info"

[mqtt]
enabled = {enabled}
host = "{host or '127.0.0.1'}"
port = {int(port or 1883) if mqtt != 'off' else 1883}

[schedule]   # the simulated hall is always open, so a demo works at any hour
{_ALWAYS}

[services.general]
name = "综合窗口"
prefix = "A"

[services.social]
name = "社保医保"
prefix = "B"

[devices.id_reader]
type = "sam_idcard"
port = "{reader}"

[devices.hall_gate]
type = "modbus_gate"
port = "{hall}"
zone = "hall"
# the visitors' push-buttons are wired to the hall gate's relay board
inputs = {{ assist_button = {HALL_ASSIST_INPUT}, escalation_button = {HALL_ESCALATION_INPUT} }}

[devices.office_gate]
type = "modbus_gate"
port = "{office}"
zone = "office"

[devices.printer]
type = "escpos_printer"
port = "{printer}"
"""


def _summary(d: Path, cfg: Path, tickets: Path, crowd: Crowd, printed: int,
             status: dict[str, Any], outbox: OutboxStats) -> str:
    devices = ", ".join(f"{n} {s['state']}" for n, s in status.get("devices", {}).items())
    return (f"\nsimulation stopped: {crowd.visitors} visitors ({crowd.manual} manual tickets), "
            f"{crowd.calls} tickets called, {printed} tickets printed\n"
            f"  devices:  {devices}\n"
            f"  outbox:   {outbox.depth} events waiting (last seq {outbox.last_seq})\n"
            f"  state:    {d / 'state'}   (gated outbox stats -c {cfg})\n"
            f"  tickets:  {tickets}   (PNG and text of every printed ticket)\n"
            f"  config:   {cfg}\n")
