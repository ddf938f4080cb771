"""A pedestrian swing or flap gate behind a Modbus relay board (``gate = "swing"``).

The gate's own controller runs the lane: it opens on a dry-contact pulse on its OPEN input
for a direction (``coils.open`` = A, the entry; ``coils.open_b`` = B, if wired), guards the
lane with its own anti-pinch sensors, closes by itself, and pulses a PASS A / PASS B output
once per person through. This driver pulses, counts and watches (board-timed pulses where
the board's profile has a timer, as for barriers).

Behaviour the core can rely on:
- ``open`` (args ``direction``: "a" default, or "b") admits one visitor: one pulse, and the
  admission counts in the lane's current episode, which lasts ``auto_close_s`` after the last
  admission. Every PASS pulse is a passage and is reported as ``GatePassage(count,
  admitted)`` of its direction, so the core flags tailgating (more passages than admissions)
  as for a barrier; two visitors admitted back to back each get their own passage. A
  passage with no admission at all (a jumped flap) is ``count`` 1, ``admitted`` 0. PASS B
  is counted only when ``open_b`` is wired; otherwise exit is free and B is logged only.
- ``hold_open`` (and a fire alarm in a ``fail_open`` zone) keeps the OPEN contact(s) closed
  (a level, not a pulse: most controllers stay open while OPEN is held; check yours) until
  ``release`` / ``close``; during fire, ``close`` is refused. Held by the host: a crash then
  leaves the lane open, which is the fail-open side.
- Jam: a PASS output active longer than ``travel_timeout_s`` (somebody or something stuck in
  the lane) or the controller's ``alarm`` output raises ``jam`` and sets ``fault``
  (DEGRADED) until it clears.
- ``GateInputs`` maps the lane onto the barrier's fields: ``open_limit`` = held open,
  ``closed_limit`` = not held, ``safety_beam`` = a PASS output active (someone in the lane),
  ``fire_alarm``.
- Link failures become ``DeviceTimeout`` / ``DeviceUnavailable`` like the barrier's.
- Inputs are read every ``poll_interval_ms`` always: ``idle_poll_interval_ms`` does not apply.
  PASS outputs are short pulses that come whenever somebody walks through (an exit, a jumped
  flap), and a pulse between two slow reads would never be counted.
"""

from __future__ import annotations

import time

import structlog

from drivers.base import (
    CommandDone,
    DeviceCommand,
    DeviceError,
    DeviceTimeout,
    DeviceUnavailable,
    GateAlarm,
    GateAlarmKind,
    GateInputs,
    GatePassage,
    Observation,
)
from drivers.modbus_gate.board import Relay
from drivers.modbus_gate.lane import BoardGate
from drivers.modbus_gate.settings import GateSettings

log = structlog.get_logger(__name__)

LANE_INPUTS = ("pass_a", "pass_b", "fire_alarm", "alarm")
DIRECTIONS = {"a": ("pass_a", Relay.OPEN), "b": ("pass_b", Relay.OPEN_B)}


class SwingGate(BoardGate):
    def __init__(self, name: str, config: GateSettings, *, fail_open: bool = True) -> None:
        super().__init__(name, config, fail_open=fail_open,
                         log=log.bind(device=name, zone=config.zone, gate="swing"),
                         inputs=LANE_INPUTS)
        self.handlers = {"open": self._cmd_open, "hold_open": self._cmd_hold,
                         "close": self._cmd_release, "release": self._cmd_release,
                         "lamp": self._cmd_lamp}
        self._reset()

    def _reset(self) -> None:
        self._state: dict[str, bool] = dict.fromkeys(LANE_INPUTS, False)
        self._board.forget()
        self.pending = []
        self._admitted = {"a": 0, "b": 0}
        self._passages = {"a": 0, "b": 0}
        self._episode_until = 0.0
        self._hold = False
        self._fire_hold = False
        self._active_since: dict[str, float] = {}
        self._jams: dict[str, str] = {}
        self._next_read_at = 0.0
        self.fault = None

    # ------------------------------------------------------------------ Device
    def open(self) -> None:
        self._reset()
        self._link.open()
        try:
            for note in self._board.setup():  # first: inputs must not drive relays
                self._log.warning("gate_board_setup", change=note)
            self._board.all_off()
            if self._board.can_read:
                now = time.monotonic()
                state, _ = self._board.read_named(now)
                self.pending = self._on_inputs(state, now, first=True)
        except DeviceError:
            self._link.close()
            raise
        self._next_read_at = time.monotonic() + self._poll_s
        self._log.info("gate_opened", port=self.config.port, profile=self.config.profile,
                       board_timed=self._board.board_timed)

    # ------------------------------------------------------------------ commands
    def _cmd_open(self, cmd: DeviceCommand) -> list[Observation]:
        direction = cmd.args.get("direction", "a")
        if direction not in DIRECTIONS:
            return [CommandDone(cmd.command_id, False, "args.direction must be 'a' or 'b'")]
        relay = DIRECTIONS[direction][1]
        if relay not in self._board.relays:
            return [CommandDone(cmd.command_id, False, f"no open relay for direction "
                                                       f"{direction} wired")]
        if cmd.args.get("hold") is True:
            return self._cmd_hold(cmd)
        now = time.monotonic()
        self._admitted[direction] += 1
        self._episode_until = now + self.config.auto_close_s
        if not self._holding:
            self._board.pulse(relay, now, separate=True)
        return [CommandDone(cmd.command_id, True)]

    def _cmd_hold(self, cmd: DeviceCommand) -> list[Observation]:
        self._hold = True
        self._hold_relays(True)
        return [CommandDone(cmd.command_id, True, "holding open")]

    def _cmd_release(self, cmd: DeviceCommand) -> list[Observation]:
        if self._fire_hold:
            if cmd.action == "close":
                return [GateAlarm(GateAlarmKind.CLOSE_REFUSED_FIRE, "fire alarm active"),
                        CommandDone(cmd.command_id, False,
                                    "refused: fire alarm holds the gate open")]
            self._hold = False
            return [CommandDone(cmd.command_id, True, "fire alarm still holds the gate open")]
        self._hold = False
        self._hold_relays(False)
        return [CommandDone(cmd.command_id, True)]

    def _cmd_lamp(self, cmd: DeviceCommand) -> list[Observation]:
        on = cmd.args.get("on")
        if not isinstance(on, bool):
            return [CommandDone(cmd.command_id, False, "args.on must be a boolean")]
        if Relay.LAMP not in self._board.relays:
            return [CommandDone(cmd.command_id, False, "no lamp relay configured")]
        self._board.switch(Relay.LAMP, on)
        return [CommandDone(cmd.command_id, True)]

    @property
    def _holding(self) -> bool:
        return self._hold or self._fire_hold

    def _hold_relays(self, on: bool) -> None:
        for _, relay in DIRECTIONS.values():
            if relay in self._board.relays:
                self._board.switch(relay, on)

    # ------------------------------------------------------------------ polling
    def _service(self, now: float) -> list[Observation]:
        self._board.end_due_pulses(now)
        if now < self._next_read_at:
            return []
        out: list[Observation] = []
        if self._board.can_read:
            state, presses = self._board.read_named(now)
            out += [*presses, *self._on_inputs(state, now)]
        self._next_read_at = now + self._poll_s
        return out + self._timers(now)

    def _gate_inputs(self) -> GateInputs:
        s = self._state
        return GateInputs(open_limit=self._holding, closed_limit=not self._holding,
                          safety_beam=s["pass_a"] or s["pass_b"], fire_alarm=s["fire_alarm"])

    def _on_inputs(self, new: dict[str, bool], now: float, *,
                   first: bool = False) -> list[Observation]:
        prev = self._state
        self._state = {k: new.get(k, False) for k in LANE_INPUTS}
        before = self._gate_inputs() if not first else None
        out: list[Observation] = []
        if first:  # a PASS already active at start is not a passage; fire still counts
            prev = {**self._state, "fire_alarm": False, "alarm": False}
        if self._state["fire_alarm"] != prev["fire_alarm"]:
            out += self._fire_changed(self._state["fire_alarm"])
        for direction, (name, _) in DIRECTIONS.items():
            if self._state[name] and not prev[name]:
                self._active_since[name] = now
                out += self._passage(direction, now)
            elif prev[name] and not self._state[name]:
                self._active_since.pop(name, None)
                self._clear_jam(name)
        if self._state["alarm"] and not prev["alarm"]:
            out.append(self._jam("alarm", "the controller's alarm output is active"))
        elif prev["alarm"] and not self._state["alarm"]:
            self._clear_jam("alarm")
        inputs = self._gate_inputs()
        return ([inputs] if first or inputs != before else []) + out

    def _passage(self, direction: str, now: float) -> list[Observation]:
        if direction == "b" and Relay.OPEN_B not in self._board.relays:
            self._log.info("gate_exit", direction="b")
            return []
        if now >= self._episode_until and self._passages[direction] >= \
                self._admitted[direction]:
            self._admitted[direction] = self._passages[direction] = 0
        self._passages[direction] += 1
        self._log.info("gate_passage", direction=direction, count=self._passages[direction],
                       admitted=self._admitted[direction])
        return [GatePassage(self._passages[direction], self._admitted[direction])]

    def _timers(self, now: float) -> list[Observation]:
        out: list[Observation] = []
        if now >= self._episode_until and any(self._admitted.values()):
            self._admitted = {"a": 0, "b": 0}  # the lane's episode is over: a new count
            self._passages = {"a": 0, "b": 0}
        for name, since in self._active_since.items():
            if name not in self._jams and now - since >= self.config.travel_timeout_s:
                out.append(self._jam(name, f"{name} active for more than "
                                           f"{self.config.travel_timeout_s:g} s"))
        return out

    def _jam(self, source: str, detail: str) -> GateAlarm:
        self._jams[source] = detail
        self.fault = f"jam: {detail}"
        self._log.warning("gate_jam", source=source, detail=detail)
        return GateAlarm(GateAlarmKind.JAM, detail)

    def _clear_jam(self, source: str) -> None:
        if self._jams.pop(source, None) is not None:
            self.fault = f"jam: {next(iter(self._jams.values()))}" if self._jams else None

    def _fire_changed(self, alarm: bool) -> list[Observation]:
        if not alarm:
            self._log.warning("gate_fire_cleared")
            if self._fire_hold:
                self._fire_hold = False
                if not self._hold:
                    self._hold_relays(False)
            return [GateAlarm(GateAlarmKind.FIRE_CLEARED)]
        self._log.warning("gate_fire_alarm", fail_open=self.fail_open)
        if not self.fail_open:
            return [GateAlarm(GateAlarmKind.FIRE_REPORTED,
                              "zone does not fail open: gate left as is")]
        self._fire_hold = True
        self._hold_relays(True)
        return [GateAlarm(GateAlarmKind.FIRE, "holding the gate open")]

    # ------------------------------------------------------------------ the link
    def _lost(self, e: DeviceTimeout | DeviceUnavailable) -> DeviceError:
        self._log.warning("gate_link_lost", holding=self._holding, reason=e.reason,
                          error=str(e))
        return type(e)(f"{e} (lane {'held open' if self._holding else 'normal'}; the "
                       f"controller's own fail-safe applies)", reason=e.reason)


__all__ = ["SwingGate"]
