"""The daemon: builds store, state thread, devices, booth logic and uplink from one config.

Start order matters: the store opens (and repairs) first, the state thread next, then the
devices whose observations feed it, then the uplink that drains what it committed. Stop is
the reverse, so nothing a device saw in its last moment is lost.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sqlite3
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from drivers.base import CommandDone, DeviceState, Observation
from gated import __version__
from gated.app.control import ControlServer
from gated.app.logs import configure_logging
from gated.app.stream import EventStream
from gated.booth import BoothLogic, DeviceDirectory, Lists
from gated.commands import CommandRegistry, load_command_key, register_commands
from gated.config import (
    DIR_MODE,
    FILE_MODE,
    UMASK,
    ConfigError,
    GatedConfig,
    check_config,
    tighten,
    too_open,
)
from gated.policy import CodeKeyError, SiteKeyError, load_code_keys, load_site_key
from gated.state import (
    Batch,
    EventType,
    Outbox,
    SchemaHook,
    StateLoop,
    Store,
    clock_synchronised,
    outbox_figures,
    seq_parts,
    utc_now_iso,
)

log = structlog.get_logger(__name__)

HEARTBEAT_S = 60.0
HOUSEKEEPING_S = 60.0
#: The booth's own timers (unanswered cases re-raised, the day's end) are checked this often.
#: Their periods are minutes (assist_escalate_s 120, escalation_reraise_s 600), so a few
#: seconds late is nothing; each check is a wake-up and a transaction all night long.
TICK_S = 5.0


class StartupError(Exception):
    """The daemon cannot start; the message tells local IT what to fix."""


class Daemon:
    def __init__(self, cfg: GatedConfig, *, config_path: Path | None = None,
                 site_key: bytes | None = None) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self._site_key = site_key
        self.started_at = time.monotonic()
        self.store: Store | None = None
        self.outbox: Outbox | None = None
        self.loop: StateLoop | None = None
        self.devices: DeviceDirectory | None = None
        self.booth: BoothLogic | None = None
        self.lists: Lists | None = None
        self.commands = CommandRegistry()
        self.uplink: Any = None
        self.control: ControlServer | None = None
        self.stream: EventStream | None = None
        self._stopped = threading.Event()
        self._reload_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        cfg = self.cfg
        key = self._site_key
        if key is None:
            try:
                key = load_site_key(cfg.site.key_file)
            except SiteKeyError as e:
                raise StartupError(str(e)) from None
        try:
            code_keys = load_code_keys(cfg.appointments)
        except CodeKeyError as e:
            raise StartupError(f"appointment code key: {e}") from None
        # Whoever starts it (systemd with UMask=, a shell, a test), what it creates is 0750/0640.
        os.umask(UMASK)
        hooks: list[SchemaHook] = [Outbox.ensure_schema, BoothLogic.ensure_schema,
                                   Lists.ensure_schema, CommandRegistry.ensure_schema]
        self.store = Store(cfg.state_dir, hooks)
        self.store.open()
        _tighten_state(cfg)
        self.outbox = Outbox(self.store, cfg.outbox, cfg.site.id, cfg.booth.id)
        self.loop = StateLoop(self.store, self.outbox, max_batch=cfg.outbox.max_batch,
                              tick_s=TICK_S, clock_ok=clock_synchronised)
        self.lists = Lists(self.store.conn)
        self.devices = DeviceDirectory(cfg, on_observation=self._on_observation,
                                       on_state=self._on_device_state)
        self.booth = BoothLogic(cfg, self.devices, self.lists, key, code_keys)
        register_commands(self.commands, self, loop=self.loop, booth=self.booth,
                          lists=self.lists)
        self._configure_commands(cfg)
        self.loop.on_storage_failed.append(self._storage_failed)
        self.loop.on_storage_recovered.append(self._storage_recovered)
        self.loop.post(self._started)
        self.loop.every(HEARTBEAT_S, self._heartbeat)
        self.loop.every(HOUSEKEEPING_S, self._housekeeping)
        self.loop.every(TICK_S, self._tick)
        self.loop.start()
        self.devices.start()
        self.stream = EventStream(cfg.site.id, cfg.booth.id, self.status,
                                  session=self.outbox.session.number)
        self.loop.on_commit.append(self.stream.publish)
        self.control = ControlServer(cfg.state_dir, self.dispatch_local, self.stream)
        try:
            self.control.start()
        except OSError as e:  # the booth still works; only the local CLI cannot reach it
            log.error("control_socket_failed", path=str(self.control.path), error=str(e))
            self.control = None
        if cfg.mqtt.enabled:
            from gated.uplink import Uplink

            self.uplink = Uplink(cfg, self.store, self.loop, self.outbox, self.commands,
                                 lambda: self.status(include_uplink=False), self.lists)
            self.uplink.start()
        log.info("daemon_started", version=__version__, state_dir=str(cfg.state_dir),
                 devices=len(self.devices.runners), mqtt=cfg.mqtt.enabled)
        # What exists now (config, lists, modules) lives as long as the daemon: keep it out of
        # every later garbage collection, whose full passes otherwise stall the state thread.
        gc.freeze()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        sd_notify("STOPPING=1")
        if self.control is not None:
            self.control.stop()
        if self.devices is not None:
            self.devices.stop()
        if self.loop is not None:
            try:
                self.loop.call_wait(self._stopping, timeout=5.0)
            except FutureTimeout:
                log.error("stopping_event_not_committed")
        # The uplink goes before the state loop: its last acknowledgements are committed there,
        # so rows the broker already has are not sent again after the restart.
        if self.uplink is not None:
            self.uplink.stop()
        if self.loop is not None:
            self.loop.stop()
        if self.store is not None:
            self.store.close()
        log.info("daemon_stopped")

    def run_forever(self) -> None:
        """Block until SIGTERM/SIGINT; SIGHUP reloads the config. Pings the systemd watchdog."""
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        # Off the main thread: a reload waits for the state thread and must not hold up
        # the watchdog pings or a SIGTERM that follows.
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(
            target=self.reload, name="gated-reload", daemon=True).start())
        # Ready only now: a SIGTERM right after READY=1 must stop the daemon cleanly, not
        # kill it before its handler is in place.
        sd_notify("READY=1")
        watchdog = _watchdog_interval()
        while not stop.wait(watchdog or 30.0):  # a signal sets stop at once
            if watchdog and self.loop is not None and self.loop.running:
                sd_notify("WATCHDOG=1")
        self.stop()

    def _configure_commands(self, cfg: GatedConfig) -> None:
        assert self.loop is not None
        self.commands.configure(key=load_command_key(cfg.mqtt.command_key_file),
                                max_skew_s=cfg.mqtt.command_max_skew_s,
                                max_bytes=cfg.mqtt.command_max_bytes, loop=self.loop)

    def reload(self) -> dict[str, Any]:
        """Re-read the config file. Device and store changes need a restart; say so.

        Safe from any thread but the state thread; concurrent reloads run one after another.
        """
        with self._reload_lock:
            return self._reload()

    def _reload(self) -> dict[str, Any]:
        if self.config_path is None:
            return {"ok": False, "reason": "no_config_file",
                    "message": "the daemon was started without a config file"}
        try:
            new = check_config(self.config_path)
            code_keys = load_code_keys(new.appointments)
        except (ConfigError, CodeKeyError) as e:  # a bad file must not take the daemon down
            log.error("config_reload_failed", error=str(e))
            return {"ok": False, "reason": "bad_config", "message": str(e)}
        restart = [k for k in ("site", "booth", "state_dir", "devices", "outbox")
                   if getattr(new, k) != getattr(self.cfg, k)]
        if self.booth is not None and self.loop is not None:
            booth = self.booth  # its queue and cases belong to the state thread
            try:
                self.loop.call_wait(lambda b: booth.reload(new, code_keys), timeout=5.0)
            except FutureTimeout:
                return {"ok": False, "reason": "busy", "message": "state thread did not answer"}
        configure_logging(new.log.level, new.log.format, site=new.site.id, booth=new.booth.id)
        self._configure_commands(new)
        reply: dict[str, Any] = {"ok": True, "needs_restart": restart}
        if self.uplink is not None and new.mqtt != self.cfg.mqtt:
            # On its own thread, a moment later: a reload that came over MQTT is answered on
            # the old connection first, and the command worker is not asked to join itself.
            timer = threading.Timer(0.5, self.uplink.reload, args=(new,))
            timer.daemon = True
            timer.start()
            reply["uplink"] = "reconnecting"
        self.cfg = new
        log.info("config_reloaded", needs_restart=restart)
        return reply

    # ------------------------------------------------------------------ status
    def status(self, *, include_uplink: bool = True) -> dict[str, Any]:
        """The booth's status document: the same one ``gated status`` prints and the retained
        MQTT ``status`` carries (the uplink adds its own connection state there,
        ``include_uplink=False``). Safe from any thread: the queue and outbox parts are read
        on the caller's thread through a read-only connection (a WAL snapshot of the last
        commit), so a status request never waits behind, or adds to, the state thread.

        ``state`` is ``online``, or ``faulted`` while a state-thread job keeps failing or
        nothing can be written; ``problems`` then says what."""
        assert self.devices is not None and self.booth is not None and self.loop is not None
        assert self.store is not None
        queue: dict[str, Any]
        outbox: dict[str, Any]
        try:
            conn = self.store.reader()
            try:
                queue = self.booth.status(conn)
                outbox = outbox_figures(conn)
            finally:
                conn.close()
        except sqlite3.Error as e:
            log.warning("status_read_failed", error=str(e))
            queue = outbox = {"error": f"state database unreadable: {e}"}
        problems = self.problems()
        out = {
            "online": True,
            "state": "faulted" if problems else "online",
            "problems": problems,
            "version": __version__,
            "site": self.cfg.site.id,
            "booth": self.cfg.booth.id,
            "session": self.outbox.session.number if self.outbox is not None else None,
            "ts": utc_now_iso(),
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "devices": self.devices.snapshot(),
            "queue": queue,
            "storage_ok": not self.loop.storage_failed,
            "clock_synchronised": clock_synchronised(),
            "outbox": outbox,
            "lists": self.lists.versions() if self.lists is not None else {},
        }
        if include_uplink and self.uplink is not None:
            out["uplink"] = self.uplink.state()
        return out

    def problems(self) -> list[dict[str, Any]]:
        """Why the booth is not serving as it should: storage that cannot be written, jobs of
        the state thread that keep failing."""
        assert self.loop is not None
        out: list[dict[str, Any]] = []
        storage = self.loop.storage_problem
        if storage is not None:
            out.append({"kind": "storage", "reason": storage["reason"],
                        "error": storage["error"], "since": storage["since"]})
        out += [{"kind": "state_job_failing", **p} for p in self.loop.faults.problems()]
        return out

    def request_sync(self, kinds: list[str]) -> str | None:
        """Ask the centre for list snapshots; None when asked, else why not."""
        if self.uplink is None:
            return "mqtt_disabled"
        return None if self.uplink.request_sync(kinds) else "not_connected"

    def dispatch_local(self, name: str, args: dict[str, Any],
                       actor: dict[str, str] | None = None) -> dict[str, Any]:
        """A command from this machine (control socket, ``gated simulate``): trusted, so
        unsigned; the same registry and replies as MQTT commands. ``actor`` (who did it, e.g.
        the hall's counter and clerk) goes into the audit event."""
        return self.commands.dispatch(name, json.dumps({"args": args}).encode(), source="local",
                                      actor=actor)

    # ------------------------------------------------------------------ device callbacks
    def _on_observation(self, device: str, obs: Observation) -> None:
        assert self.loop is not None and self.booth is not None
        booth = self.booth
        if isinstance(obs, CommandDone):
            self.loop.post(lambda b: booth.on_command_done(b, device, obs))
        else:
            self.loop.post(lambda b: booth.on_observation(b, device, obs))

    def _on_device_state(self, device: str, old: DeviceState, new: DeviceState,
                         reason: str) -> None:
        assert self.loop is not None and self.booth is not None
        booth = self.booth

        def handle(b: Batch) -> None:
            b.emit(EventType.DEVICE_STATE, {"device": device, "old": str(old), "new": str(new),
                                            "reason": reason})
            booth.on_device_state(b, device, old, new, reason)
        self.loop.post(handle)

    # ------------------------------------------------------------------ state-thread jobs
    def _started(self, b: Batch) -> None:
        assert self.store is not None and self.outbox is not None
        session = self.outbox.session
        b.emit(EventType.BOOTH_STARTED, {"version": __version__,
                                         "devices": sorted(self.cfg.devices),
                                         "session_from": str(session.source),
                                         "session_persisted": session.persisted})
        rec = self.store.recovery
        gap = self.outbox.seq_gap()
        if rec is not None:
            b.emit(EventType.OUTBOX_CORRUPTED, {
                "moved_to": rec.moved_to, "error": rec.error, "salvaged": rec.salvaged,
                "lost_tables": rec.lost_tables, "seq_gap_from": self.outbox.seq_gap_from,
                "seq_resumed_at": self.outbox.resumed_at, "ranges": gap})
        elif gap:  # the database file was gone (deleted, a new card): numbers were reserved
            b.emit(EventType.OUTBOX_SKIPPED, {"reason": "database_missing", "ranges": gap,
                                              "seq_resumed_at": self.outbox.resumed_at})

    def _storage_failed(self) -> None:
        assert self.booth is not None
        held = self.booth.gates.hold_while_storage_fails()
        log.error("storage_failed_gates_held_open", gates=held,
                  message="nothing can be recorded: hand out numbers by hand")

    def _storage_recovered(self) -> None:
        assert self.booth is not None and self.store is not None
        released = self.booth.gates.release_after_storage(self.store.conn)
        log.warning("storage_recovered_gates_released", gates=released)

    def _stopping(self, b: Batch) -> None:
        b.emit(EventType.BOOTH_STOPPED, {"uptime_s": round(time.monotonic() - self.started_at)})

    def _heartbeat(self, b: Batch) -> None:
        assert self.outbox is not None and self.devices is not None
        b.emit(EventType.HEARTBEAT, {"outbox_depth": self.outbox.depth,
                                     "devices": {n: s["state"] for n, s in
                                                 self.devices.snapshot().items()}})

    def _tick(self, b: Batch) -> None:
        assert self.booth is not None
        self.booth.tick(b, datetime.now(UTC))

    def _housekeeping(self, b: Batch) -> None:
        assert self.store is not None and self.outbox is not None
        if clock_synchronised():
            cutoff = datetime.now(UTC) - timedelta(days=self.cfg.outbox.retention_days)
            purged, gone = self.outbox.purge_older_than(
                cutoff.isoformat().replace("+00:00", "Z"))
            chunks = seq_parts(gone) if purged else []
            for i, chunk in enumerate(chunks):
                b.emit(EventType.OUTBOX_PURGED, {
                    "purged": purged if i == 0 else {},
                    "retention_days": self.cfg.outbox.retention_days, "ranges": chunk,
                    **({"part": i, "parts": len(chunks)} if len(chunks) > 1 else {})})
        if self.store.wal_bytes() > 8 * 1024 * 1024:
            b.after_commit(lambda: self._checkpoint("TRUNCATE"))

    def _checkpoint(self, mode: str) -> None:
        assert self.store is not None
        busy, wal_pages, done = self.store.checkpoint(mode)
        log.debug("wal_checkpoint", mode=mode, busy=busy, wal_pages=wal_pages, done=done)


def _tighten_state(cfg: GatedConfig) -> None:
    """The state directory holds pseudonyms, lists and the outbox: 0750 and 0640 at most. What
    this user owns is tightened, with a warning; what it does not is warned of. (Secrets that
    are too open never get here: ``check_config`` refuses them.)"""
    state = cfg.state_dir
    paths = [(state, DIR_MODE)] + [(p, FILE_MODE) for p in sorted(state.iterdir())
                                   if p.is_file() and not p.name.endswith(".sock")]
    for path, limit in paths:
        was = tighten(path, limit)
        if was is not None:
            log.warning("state_mode_tightened", path=str(path), was=f"{was:04o}",
                        now=f"{was & limit:04o}")
        elif (mode := too_open(path, limit)) is not None:
            log.warning("state_mode_too_open", path=str(path), mode=f"{mode:04o}",
                        want=f"{limit:04o}", fix=f"chmod {limit:04o} {path}")


def sd_notify(state: str) -> None:
    """Tell systemd (Type=notify) about readiness and liveness; a no-op outside systemd."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(state.encode())
    except OSError as e:
        log.warning("sd_notify_failed", error=str(e))


def _watchdog_interval() -> float | None:
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit():
        return None
    return int(usec) / 2e6
