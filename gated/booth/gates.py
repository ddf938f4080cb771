"""The booth's gates as the state thread drives them: openings, zone modes, the assist lamp.

Owned by ``BoothLogic``; every method runs on the state thread inside a batch, and every
command to a gate is sent after the batch commits (``Batch.after_commit``), so a gate never
moves for a decision that is not on disk. Zone modes set at run time live in ``b_zone_modes``
and are applied again whenever a gate's board (re)connects: a relay board remembers nothing.
``held`` names the gates held open (free passage, fire), where more passages than openings
are expected and are not tailgating.
"""

from __future__ import annotations

import sqlite3
import threading
from functools import partial
from typing import Any

from drivers.base import DeviceCommand, GateAlarm, GateAlarmKind
from gated.booth.cases import Cases
from gated.booth.devices import DeviceDirectory
from gated.config import GatedConfig, ZoneMode
from gated.state import Batch, EventType, new_event_id

_MODE_ACTIONS = {ZoneMode.FREE_PASSAGE: "hold_open", ZoneMode.NORMAL: "release",
                 ZoneMode.LOCKED: "close"}


def ensure_schema(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS b_zone_modes (zone TEXT PRIMARY KEY, mode TEXT)")


class Gates:
    def __init__(self, cfg: GatedConfig, devices: DeviceDirectory) -> None:
        self.cfg = cfg
        self.devices = devices
        self.held: set[str] = set()
        self._storage_held: set[str] = set()  # held open only because storage failed

    def open_zone(self, b: Batch, zone: str, *, reason: str, hold: bool = False) -> list[str]:
        """Open (or hold open) every gate of ``zone``; returns their names."""
        gates = self.devices.gates_for_zone(zone)
        action = "hold_open" if hold else "open"
        for gate in gates:
            b.emit(EventType.GATE_COMMAND, {"device": gate, "zone": zone, "action": action,
                                            "reason": reason})
            sent = threading.Event()  # the visitor waits for the gate: it goes out first
            b.first_out.append(sent)
            b.after_commit(partial(self.devices.send, gate,
                                   DeviceCommand(new_event_id(), action, {}, done=sent)))
        return gates

    def set_zone_mode(self, b: Batch, zone: str, mode: ZoneMode, by: str) -> None:
        b.conn.execute("INSERT OR REPLACE INTO b_zone_modes (zone, mode) VALUES (?, ?)",
                       (zone, str(mode)))
        b.emit(EventType.COMMAND, {"name": "set_zone_mode", "zone": zone, "mode": str(mode),
                                   "by": by})
        for gate in self.devices.gates_for_zone(zone):
            self._apply_mode(b, gate, mode)

    def zone_modes(self, conn: sqlite3.Connection) -> dict[str, ZoneMode]:
        """The modes set at run time (zones not listed have their configured mode)."""
        return {z: ZoneMode(m) for z, m in conn.execute("SELECT zone, mode FROM b_zone_modes")
                if z in self.cfg.zones}

    def restore(self, b: Batch, gate: str) -> None:
        """After a (re)connect the relay board knows nothing: re-apply the zone's mode and
        light the assist lamp again while an assist request of the zone is open."""
        zone = next((z for z in self.cfg.zones if gate in self.devices.gates_for_zone(z)), None)
        if zone is None:
            return
        mode = self.zone_modes(b.conn).get(zone, self.cfg.zones[zone].mode)
        if mode is not ZoneMode.NORMAL:
            self._apply_mode(b, gate, mode)
        if Cases.open_assists_in(b.conn, zone):
            self.send_after_commit(b, gate, "lamp", on=True)

    def lamp(self, b: Batch, zone: str | None, *, on: bool) -> None:
        """The assist lamp of ``zone`` (every zone when None)."""
        for z in [zone] if zone else list(self.cfg.zones):
            for gate in self.devices.gates_for_zone(z):
                self.send_after_commit(b, gate, "lamp", on=on)

    def on_alarm(self, b: Batch, device: str, obs: GateAlarm) -> None:
        if obs.kind is GateAlarmKind.FIRE:
            self.held.add(device)
        elif obs.kind is GateAlarmKind.FIRE_CLEARED:
            self.held.discard(device)
        b.emit(EventType.ALARM, {"kind": f"gate_{obs.kind}", "device": device,
                                 "detail": obs.detail})

    def hold_while_storage_fails(self) -> list[str]:
        """Nothing can be written, so no visitor can be decided for: the gates of zones that
        fail open are opened and held now (not after a commit: there will be none) so the
        public hall stays open, as on a fire alarm; the guard hands out numbers by hand."""
        held = []
        for zone, z in self.cfg.zones.items():
            if not z.fail_open:
                continue
            for gate in self.devices.gates_for_zone(zone):
                self.devices.send(gate, DeviceCommand(new_event_id(), "hold_open",
                                                      {"reason": "storage_failed"}))
                held.append(gate)
        self._storage_held = set(held) - self.held
        self.held.update(held)
        return held

    def release_after_storage(self, conn: sqlite3.Connection) -> list[str]:
        """Storage works again: give back the gates held for it to their zone's mode."""
        released = []
        modes = self.zone_modes(conn)
        for zone, z in self.cfg.zones.items():
            if modes.get(zone, z.mode) is not ZoneMode.NORMAL:
                continue  # free passage or locked: the mode's own command stands
            for gate in self.devices.gates_for_zone(zone):
                if gate in self._storage_held:
                    self.devices.send(gate, DeviceCommand(new_event_id(), "release", {}))
                    self.held.discard(gate)
                    released.append(gate)
        self._storage_held = set()
        return released

    def send_after_commit(self, b: Batch, device: str, action: str, **args: Any) -> None:
        b.after_commit(partial(self.devices.send, device,
                               DeviceCommand(new_event_id(), action, dict(args))))

    def _apply_mode(self, b: Batch, gate: str, mode: ZoneMode) -> None:
        if mode is ZoneMode.FREE_PASSAGE:
            self.held.add(gate)
        else:
            self.held.discard(gate)
        self.send_after_commit(b, gate, _MODE_ACTIONS[mode])
