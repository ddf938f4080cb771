"""Barrier gate driven through a Modbus RTU relay board (PROTOCOLS.md section 4).

Also the ``contact`` gate kind (an OPEN contact and no feedback); pedestrian swing gates are
``drivers.modbus_gate.swing``. Which board, and so which bytes, is the table's ``profile``
(``drivers.modbus_gate.profiles``).

OPEN, CLOSE and STOP are momentary relay pulses on the controller's dry-contact terminals:
one board-timed pulse command where the board has a timer (Waveshare flash, the register
family's delayed-off), else relay on, then off ``pulse_ms`` later (the "off" is written
from ``poll``, so ``execute`` returns at once).
An optional relay drives the assist lamp or buzzer. One read takes every input: open and
closed limits, the loop or infrared safety beam, the fire alarm, and the visitors' assist and
escalation buttons if wired there (``buttons.py``). Inputs are read every ``poll_interval_ms``
while anything happens, every ``open_poll_interval_ms`` while the arm rests open with the beam
clear (``_resting_open``: waiting for the visitor) and every ``idle_poll_interval_ms`` while the
arm is down and quiet (``_quiet``): an idle booth costs next to no CPU, and a fire alarm or a
forced arm is still seen within that interval. This module is the arm's model; the board's own
part (frames, pulses, the input read) is ``board.py``.

Behaviour the core can rely on:
- ``open`` admits one visitor and arms auto-close: the arm closes once every visitor admitted
  since it was last down has passed (beam interrupted then cleared, once each) or
  ``auto_close_s`` after the last admission (counted from the open limit), whichever comes
  first. A second visitor admitted while the first is in the beam is not shut out when the
  first clears it. ``hold`` (or ``hold_open``) suppresses closing until ``release`` or
  ``close``.
- The arm is never sent down while the beam is interrupted: an explicit ``close`` re-reads the
  inputs first and is refused (``close_refused_safety``); auto-close waits; a beam interrupted
  while closing sends the arm back up (``close_refused_safety``, detail "reversed").
- Alarms (``GateAlarm.kind``): ``jam`` (commanded but the limit was not reached within
  ``travel_timeout_s``; also sets ``fault`` until a limit is reached), ``forced`` (arm left the
  closed limit without an open command), ``held_open`` (open longer than
  ``held_open_alarm_s`` outside hold and fire), ``fire`` / ``fire_cleared``, and
  ``close_refused_fire``. ``GatePassage`` numbers passages and admissions since the arm was
  last down.
- Fire alarm in a ``fail_open`` zone: open, hold, refuse ``close`` until the input clears,
  then auto-close as after an ordinary opening. In other zones fire is reported only.
- Link failure: the driver cannot move the arm without the board, so the physical fail-safe
  is the controller's (wire it to open, or stay open, when the board loses power). The driver
  reports the failure as ``DeviceTimeout`` / ``DeviceUnavailable`` carrying the arm's last
  known position, and logs ``gate_link_lost``. A fresh driver (after reopen) switches the
  command relays off, reads the inputs and reports them at once; an arm found open is left
  open (the driver never closes what it did not open) and raises ``held_open`` later.
"""

from __future__ import annotations

import enum
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


class Intent(enum.StrEnum):
    """The last movement this driver asked for; NONE after (re)connect or a completed close."""

    NONE = "none"
    OPEN = "open"
    CLOSE = "close"
    STOP = "stop"


class ModbusGate(BoardGate):
    def __init__(self, name: str, config: GateSettings, *, fail_open: bool = True) -> None:
        super().__init__(name, config, fail_open=fail_open,
                         log=log.bind(device=name, zone=config.zone))
        self._wired = self._board.wired
        self._quiet_s = config.quiet_poll_s
        self._open_s = config.open_poll_s
        self.handlers = {
            "open": self._cmd_open, "hold_open": self._cmd_open, "close": self._cmd_close,
            "stop": self._cmd_stop, "lamp": self._cmd_lamp, "release": self._cmd_release}
        self._reset()

    def _reset(self) -> None:
        self._inputs = GateInputs(False, False, False, False)
        self._seen = False  # inputs read at least once since open()
        self._board.forget()
        self.pending = []
        self._intent = Intent.NONE
        self._travel: tuple[Intent, float] | None = None  # target and deadline
        self._auto_close_at: float | None = None
        self._open_since: float | None = None
        self._held_alarmed = False
        self._hold = False
        self._fire_hold = False
        self._beam_in_gate = False
        self._passages = 0  # since the arm was last down ...
        self._admitted = 0  # ... and the openings commanded in that time
        self._next_read_at = 0.0
        self._jam: str | None = None
        self._limits_bad = False
        self.fault = None

    # ------------------------------------------------------------------ Device
    def open(self) -> None:
        self._reset()
        self._link.open()
        try:
            for note in self._board.setup():  # first: inputs must not drive relays
                self._log.warning("gate_board_setup", change=note)
            self._board.all_off()  # a host-timed pulse cut short by a crash or a lost link
            if self._board.can_read:
                now = time.monotonic()
                inputs, _ = self._board.read(now)  # (no presses at the first read)
                self.pending = self._on_inputs(inputs, now, first=True)
                if not inputs.closed_limit:  # found up: somebody was let through before
                    self._admitted = 1
        except DeviceError:
            self._link.close()
            raise
        self._next_read_at = time.monotonic() + self._poll_s
        self._log.info("gate_opened", port=self.config.port, arm=self._arm(),
                       profile=self.config.profile, board_timed=self._board.board_timed)

    # ------------------------------------------------------------------ commands
    def _cmd_open(self, cmd: DeviceCommand) -> list[Observation]:
        now = time.monotonic()
        hold = cmd.args.get("hold", cmd.action == "hold_open")
        if not isinstance(hold, bool):
            return [CommandDone(cmd.command_id, False, "args.hold must be a boolean")]
        self._admitted += 1
        self._open_arm(now, hold=hold)
        return [CommandDone(cmd.command_id, True, "holding open" if hold else "")]

    def _cmd_close(self, cmd: DeviceCommand) -> list[Observation]:
        now = time.monotonic()
        out = self._refresh(now) if self._board.can_read else []
        if self._fire_hold:
            self._log.warning("gate_close_refused", why="fire")
            return [*out, GateAlarm(GateAlarmKind.CLOSE_REFUSED_FIRE, "fire alarm active"),
                    CommandDone(cmd.command_id, False, "refused: fire alarm holds the gate open")]
        if self._inputs.safety_beam:
            self._log.warning("gate_close_refused", why="safety_beam")
            return [*out, GateAlarm(GateAlarmKind.CLOSE_REFUSED_SAFETY, "beam interrupted"),
                    CommandDone(cmd.command_id, False, "refused: safety beam interrupted")]
        if Relay.CLOSE not in self._board.relays:
            return [*out, CommandDone(cmd.command_id, False,
                                      "no close relay wired: the controller closes itself")]
        self._hold = False
        self._close_arm(now)
        return [*out, CommandDone(cmd.command_id, True)]

    def _cmd_stop(self, cmd: DeviceCommand) -> list[Observation]:
        now = time.monotonic()
        if Relay.STOP not in self._board.relays:
            return [CommandDone(cmd.command_id, False, "no stop relay wired")]
        self._intent, self._travel, self._auto_close_at = Intent.STOP, None, None
        self._board.pulse(Relay.STOP, now)
        self._watch(now)
        return [CommandDone(cmd.command_id, True)]

    def _cmd_lamp(self, cmd: DeviceCommand) -> list[Observation]:
        on = cmd.args.get("on")
        if not isinstance(on, bool):
            return [CommandDone(cmd.command_id, False, "args.on must be a boolean")]
        if Relay.LAMP not in self._board.relays:
            return [CommandDone(cmd.command_id, False, "no lamp relay configured")]
        self._board.switch(Relay.LAMP, on)
        return [CommandDone(cmd.command_id, True)]

    def _cmd_release(self, cmd: DeviceCommand) -> list[Observation]:
        now = time.monotonic()
        self._hold = False
        if self._intent == Intent.OPEN and self._inputs.open_limit and not self._fire_hold:
            self._auto_close_at = now + self.config.auto_close_s
        detail = "fire alarm still holds the gate open" if self._fire_hold else ""
        return [CommandDone(cmd.command_id, True, detail)]

    # ------------------------------------------------------------------ arm control
    @property
    def _holding(self) -> bool:
        return self._hold or self._fire_hold

    def _arm(self) -> str:
        if not self._seen:
            return "unknown"
        if self._limits_bad:
            return "inconsistent"
        if "open_limit" in self._wired and self._inputs.open_limit:
            return "open"
        if "closed_limit" in self._wired and self._inputs.closed_limit:
            return "closed"
        return "moving" if self._wired.keys() & {"open_limit", "closed_limit"} else "unknown"

    def _open_arm(self, now: float, *, hold: bool = False) -> None:
        self._hold = self._hold or hold
        self._intent = Intent.OPEN
        at_open = self._inputs.open_limit or "open_limit" not in self._wired
        self._auto_close_at = (now + self.config.auto_close_s
                               if at_open and not self._holding else None)
        self._travel = None if self._inputs.open_limit or "open_limit" not in self._wired \
            else (Intent.OPEN, now + self.config.travel_timeout_s)
        self._board.pulse(Relay.OPEN, now)
        self._watch(now)

    def _close_arm(self, now: float) -> None:
        self._intent, self._auto_close_at = Intent.CLOSE, None
        if "closed_limit" not in self._wired:  # no limit will say it is down: a new count
            self._passages = self._admitted = 0
        self._travel = None if self._inputs.closed_limit or "closed_limit" not in self._wired \
            else (Intent.CLOSE, now + self.config.travel_timeout_s)
        if Relay.CLOSE not in self._board.relays:  # a contact gate: it closes by itself
            self._intent = Intent.NONE
            return
        self._board.pulse(Relay.CLOSE, now)
        self._watch(now)

    # ------------------------------------------------------------------ polling
    def _service(self, now: float) -> list[Observation]:
        self._board.end_due_pulses(now)
        if now < self._next_read_at:
            return []
        out = self._refresh(now) if self._board.can_read else []
        out += self._timers(now)
        self._next_read_at = now + self._read_interval()
        return out

    def _read_interval(self) -> float:
        if self._quiet():
            return self._quiet_s
        return self._open_s if self._resting_open() else self._poll_s

    def _resting_open(self) -> bool:
        """The arm stands at its (wired) open limit, the beam clear, nothing else going on:
        gated waits for the visitor, who blocks the beam longer than ``open_poll_s``."""
        i = self._inputs
        return ("open_limit" in self._wired and i.open_limit and not i.closed_limit
                and not i.safety_beam and not i.fire_alarm and self._intent == Intent.OPEN
                and self._travel is None and self._jam is None and not self._limits_bad)

    def _quiet(self) -> bool:
        """Nothing to watch closely: the arm is down (or, with no closed limit wired, was sent
        down) and nothing is pending. Anything else is read at the fast rate."""
        down = self._inputs.closed_limit if "closed_limit" in self._wired \
            else self._intent != Intent.OPEN
        return (down and self._seen and not self._inputs.safety_beam
                and not self._inputs.open_limit and not self._inputs.fire_alarm
                and self._travel is None and self._auto_close_at is None
                and not self._holding and self._jam is None and not self._limits_bad
                and self._board.next_pulse_end is None)

    def _watch(self, now: float) -> None:
        """Something was commanded: read the inputs at the fast rate from now on."""
        self._next_read_at = min(self._next_read_at, now + self._poll_s)

    def _refresh(self, now: float) -> list[Observation]:
        inputs, presses = self._board.read(now)
        return [*presses, *self._on_inputs(inputs, now)]

    def _timers(self, now: float) -> list[Observation]:
        out: list[Observation] = []
        cfg = self.config
        if self._travel is not None and now >= self._travel[1]:
            target, self._travel = self._travel[0], None
            self._jam = (f"commanded {target} {cfg.travel_timeout_s:g} s ago, "
                         f"the arm did not reach the {target} limit")
            self._update_fault()
            self._log.warning("gate_jam", target=str(target), arm=self._arm())
            out.append(GateAlarm(GateAlarmKind.JAM, self._jam))
        if (self._auto_close_at is not None and now >= self._auto_close_at
                and self._intent == Intent.OPEN and not self._holding
                and not self._inputs.safety_beam):  # a beam still blocked closes on clearing
            self._close_arm(now)
        if (self._open_since is not None and not self._held_alarmed and not self._holding
                and now - self._open_since >= cfg.held_open_alarm_s):
            self._held_alarmed = True
            self._log.warning("gate_held_open", seconds=round(now - self._open_since))
            out.append(GateAlarm(GateAlarmKind.HELD_OPEN,
                                 f"open for more than {cfg.held_open_alarm_s:g} s"))
        return out

    def _on_inputs(self, new: GateInputs, now: float, *,
                   first: bool = False) -> list[Observation]:
        prev, self._inputs, self._seen = self._inputs, new, True
        out: list[Observation] = [new] if first or new != prev else []
        if first:
            prev = GateInputs(False, new.closed_limit, new.safety_beam, False)
        if new.fire_alarm != prev.fire_alarm:
            out += self._fire_changed(new, now)
        if (prev.closed_limit and not new.closed_limit and self._intent != Intent.OPEN
                and "closed_limit" in self._wired):
            self._log.warning("gate_forced", intent=str(self._intent))
            out.append(GateAlarm(GateAlarmKind.FORCED, "arm left the closed limit uncommanded"))
        if new.open_limit and not prev.open_limit:
            self._reached(Intent.OPEN, now)
        elif prev.open_limit and not new.open_limit:
            self._open_since = None
        if new.closed_limit and not prev.closed_limit:
            self._reached(Intent.CLOSE, now)
        if new.safety_beam and not prev.safety_beam:
            out += self._beam_interrupted(new, now)
        elif prev.safety_beam and not new.safety_beam:
            out += self._beam_cleared(new, now)
        self._limits_bad = new.open_limit and new.closed_limit
        self._update_fault()
        return out

    def _reached(self, limit: Intent, now: float) -> None:
        self._jam = None
        if self._travel is not None and self._travel[0] == limit:
            self._travel = None
        if limit == Intent.OPEN:
            self._open_since, self._held_alarmed = now, False
            if self._intent == Intent.OPEN and not self._holding:
                self._auto_close_at = now + self.config.auto_close_s
            return
        self._open_since, self._auto_close_at, self._beam_in_gate = None, None, False
        self._passages = self._admitted = 0  # the arm is down: everyone admitted went through
        if self._holding:
            self._log.warning("gate_hold_reopen", fire=self._fire_hold)
            self._open_arm(now)  # closed by someone else while it must stay open
        else:
            self._intent = Intent.NONE

    def _beam_interrupted(self, new: GateInputs, now: float) -> list[Observation]:
        if new.closed_limit:
            return []
        self._beam_in_gate = True
        if self._intent != Intent.CLOSE:
            return []
        self._log.warning("gate_close_reversed")
        self._open_arm(now)
        return [GateAlarm(GateAlarmKind.CLOSE_REFUSED_SAFETY,
                          "reversed: beam interrupted while closing")]

    def _beam_cleared(self, new: GateInputs, now: float) -> list[Observation]:
        if not self._beam_in_gate:
            return []
        self._beam_in_gate = False
        self._passages += 1
        if (self._intent == Intent.OPEN and not self._holding and not new.closed_limit
                and self._passages >= self._admitted):
            self._close_arm(now)  # the last one admitted is through
        return [GatePassage(self._passages, self._admitted)]

    def _fire_changed(self, new: GateInputs, now: float) -> list[Observation]:
        if not new.fire_alarm:
            self._log.warning("gate_fire_cleared")
            if self._fire_hold:
                self._fire_hold = False
                if self._intent == Intent.OPEN and new.open_limit and not self._hold:
                    self._auto_close_at = now + self.config.auto_close_s
            return [GateAlarm(GateAlarmKind.FIRE_CLEARED)]
        self._log.warning("gate_fire_alarm", fail_open=self.fail_open)
        if not self.fail_open:
            return [GateAlarm(GateAlarmKind.FIRE_REPORTED,
                              "zone does not fail open: gate left as is")]
        self._fire_hold = True
        if self._intent != Intent.OPEN:
            self._open_arm(now)
        self._auto_close_at = None
        return [GateAlarm(GateAlarmKind.FIRE, "holding the gate open")]

    def _update_fault(self) -> None:
        self.fault = ("limit_switches_inconsistent: open and closed limits both active"
                      if self._limits_bad else f"jam: {self._jam}" if self._jam else None)

    # ------------------------------------------------------------------ the link
    def _lost(self, e: DeviceTimeout | DeviceUnavailable) -> DeviceError:
        arm = self._arm()
        self._log.warning("gate_link_lost", arm=arm, intent=str(self._intent),
                          holding=self._holding, reason=e.reason, error=str(e))
        return type(e)(f"{e} (arm last seen {arm}; the controller's own fail-safe applies)",
                       reason=e.reason)
