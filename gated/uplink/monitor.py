"""``gated monitor``: a live table of every booth on a broker, for the county centre and local IT.

It subscribes to the retained ``status`` of every booth (so booths are listed at once, online or
offline) and to their events (for the last event and its age). Status messages are ordered by
(``session``, ``connection``): one older than the last applied, such as the last will of an
earlier connection that a broker publishes late, is ignored (``late`` counts them).
``--once`` collects for ``wait`` seconds and prints one table; otherwise the table is redrawn
in place every second until Ctrl-C. It only reads: the monitor never publishes.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gated.uplink.connection import SITE_WIDE, TOPIC_ROOT, read_secret


@dataclass
class BoothRow:
    site: str
    booth: str
    state: str = "?"
    version: str = ""
    devices: dict[str, str] = field(default_factory=dict)
    backlog: int | None = None
    oldest_age_s: float | None = None
    last_event: str = ""
    last_event_at: float | None = None  # monotonic, when we saw it
    status_at: float | None = None
    order: tuple[int, int] | None = None  # (session, connection) of the last status applied
    late: int = 0  # status messages (late wills) older than that, ignored


class BoothTable:
    """Folds status and event messages into one row per booth; thread-safe."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], BoothRow] = {}
        self._lock = threading.Lock()

    def feed(self, topic: str, payload: bytes, now: float | None = None) -> None:
        parts = topic.split("/")
        if len(parts) < 5 or "/".join(parts[:2]) != TOPIC_ROOT or parts[3] == SITE_WIDE:
            return
        site, booth, kind = parts[2], parts[3], parts[4]
        if kind not in ("status", "events"):
            return
        try:
            body = json.loads(payload)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            row = self.rows.setdefault((site, booth), BoothRow(site, booth))
            if kind == "status":
                order = _order(body)
                if order is not None and row.order is not None and order < row.order:
                    row.late += 1
                    return
                _apply_status(row, body)
                row.order = order if order is not None else row.order
                row.status_at = now
            else:
                row.last_event = str(body.get("type", parts[-1]))
                row.last_event_at = now

    def render(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        with self._lock:
            rows = sorted(self.rows.values(), key=lambda r: (r.site, r.booth))
        head = ("SITE", "BOOTH", "STATE", "DEVICES", "BACKLOG", "OLDEST", "LAST EVENT")
        lines = [head]
        for r in rows:
            bad = sorted(n for n, s in r.devices.items() if s.lower() not in ("ready", "ok"))
            devices = (f"{len(r.devices) - len(bad)}/{len(r.devices)} ready"
                       + (f" ({', '.join(f'{n}:{r.devices[n]}' for n in bad)})" if bad else ""))
            last = r.last_event
            if r.last_event_at is not None:
                last += f" {_age(now - r.last_event_at)} ago"
            lines.append((r.site, r.booth, r.state, devices if r.devices else "-",
                          "-" if r.backlog is None else str(r.backlog),
                          "-" if r.oldest_age_s is None else _age(r.oldest_age_s), last or "-"))
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        out = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
               for line in lines]
        online = sum(1 for r in rows if r.state == "online")
        out.append(f"{len(rows)} booth(s), {online} online")
        return "\n".join(out)


def _apply_status(row: BoothRow, body: dict[str, Any]) -> None:
    row.state = str(body.get("state") or ("online" if body.get("online") else "offline"))
    row.version = str(body.get("version", row.version))
    devices = body.get("devices")
    if isinstance(devices, dict):
        row.devices = {str(n): str(d.get("state", "?") if isinstance(d, dict) else d)
                       for n, d in devices.items()}
    outbox = body.get("outbox")
    if isinstance(outbox, dict):
        depth, age = outbox.get("depth"), outbox.get("oldest_age_s")
        row.backlog = int(depth) if isinstance(depth, int) else row.backlog
        row.oldest_age_s = float(age) if isinstance(age, int | float) else None


def _order(body: dict[str, Any]) -> tuple[int, int] | None:
    session, connection = body.get("session"), body.get("connection")
    if isinstance(session, int) and isinstance(connection, int):
        return session, connection
    return None


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h"


def run_monitor(host: str, port: int, *, site: str = "+", once: bool = False,
                wait: float = 2.0, username: str | None = None,
                password_file: Path | None = None, ca_file: Path | None = None,
                cert_file: Path | None = None, key_file: Path | None = None,
                out: TextIO | None = None) -> int:
    """Show the table; returns 0, or 1 when the broker cannot be reached or refuses us."""
    out = out or sys.stdout
    table = BoothTable()
    ready = threading.Event()
    problem: list[str] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        if username:
            client.username_pw_set(username, read_secret(password_file))
        if ca_file:
            client.tls_set(ca_certs=str(ca_file), certfile=str(cert_file) if cert_file else None,
                           keyfile=str(key_file) if key_file else None)
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        print(f"gated monitor: {e}", file=out)
        return 1

    def on_connect(c: mqtt.Client, u: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            problem.append(f"broker refused the monitor: {rc}")
        else:
            c.subscribe([(f"{TOPIC_ROOT}/{site}/+/status", 1),
                         (f"{TOPIC_ROOT}/{site}/+/events/#", 0)])
        ready.set()

    client.on_connect = on_connect
    client.on_message = lambda c, u, msg: table.feed(msg.topic, bytes(msg.payload))
    try:
        client.connect(host, port, 30)
    except OSError as e:
        print(f"gated monitor: cannot connect to {host}:{port}: {e}", file=sys.stderr)
        return 1
    client.loop_start()
    try:
        if not ready.wait(10.0) or problem:
            print(f"gated monitor: {problem[0] if problem else 'no answer from the broker'}",
                  file=sys.stderr)
            return 1
        if once:
            time.sleep(wait)
            out.write(table.render() + "\n")
            return 0
        while True:
            out.write("\x1b[H\x1b[2J" + f"gated monitor  {host}:{port}  site {site}  "
                      f"{time.strftime('%H:%M:%S')}\n\n" + table.render() + "\n")
            out.flush()
            time.sleep(1.0)
    except KeyboardInterrupt:
        return 0
    finally:
        client.disconnect()
        client.loop_stop()
