"""``gated selftest <device>``: try one configured device by hand, with the daemon stopped.

What each kind does (the device is opened with its driver, exactly as the daemon would):
- gate: shows its inputs, asks for confirmation (``--yes`` skips it), pulses OPEN once and
  reports what the inputs did (a barrier's arm should reach its open limit); then lets the
  gate close as it would after an opening;
- printer: prints the test ticket (marked 测试票) and reports the printer's status, or that
  a one-way printer cannot tell;
- card reader: waits for a card and shows its masked fields only (masked name and number,
  card type, validity): nothing personal is printed or logged;
- camera: decodes frames for ``--seconds`` and reports frames per second and how many held a
  QR code.
It talks to the device directly: stop ``gated`` first (``systemctl stop gated``), or the two
will fight over the port.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import date
from typing import Any, TextIO

from drivers.base import (
    CommandDone,
    DeviceCommand,
    DeviceError,
    DeviceKind,
    GateAlarm,
    GateInputs,
    GatePassage,
    IdCardRead,
    Observation,
    PrinterStatus,
    QrRead,
    UnreadableCard,
)
from drivers.registry import build_driver, driver_class
from drivers.settings import ZonedSettings
from gated.booth import test_ticket_document
from gated.config import GatedConfig
from gated.policy.identity import mask_id_number, mask_name


def run_selftest(cfg: GatedConfig, name: str, *, yes: bool = False, wait_s: float = 30.0,
                 seconds: float = 5.0, out: TextIO = sys.stdout,
                 ask: Callable[[str], str] = input) -> int:
    dev_cfg = cfg.devices.get(name)
    if dev_cfg is None:
        print(f"gated: no device {name!r}; configured: {', '.join(cfg.devices)}", file=out)
        return 2
    kind = driver_class(dev_cfg.type_name(), dev_cfg).kind
    kwargs: dict[str, Any] = {}
    if isinstance(dev_cfg, ZonedSettings):
        kwargs["fail_open"] = cfg.zones[dev_cfg.zone].fail_open
    device = build_driver(name, dev_cfg, **kwargs)
    try:
        device.open()
    except DeviceError as e:
        print(f"{name}: cannot open: {e.reason}: {e}", file=out)
        return 1
    try:
        if kind is DeviceKind.GATE:
            return _gate(device, name, yes, out, ask)
        if kind is DeviceKind.PRINTER:
            return _printer(device, cfg, name, out)
        if kind is DeviceKind.CARD_READER:
            return _reader(device, name, wait_s, out)
        return _camera(device, name, seconds, out)
    except DeviceError as e:
        print(f"{name}: {e.reason}: {e}", file=out)
        return 1
    finally:
        device.close()


def _pump(device: Any, seconds: float) -> list[Observation]:
    seen: list[Observation] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seen += device.poll(0.05)
    return seen


def _describe_inputs(seen: list[Observation]) -> str:
    states = [o for o in seen if isinstance(o, GateInputs)]
    if not states:
        return "no inputs wired (or none changed)"
    last = states[-1]
    return ", ".join(f"{k} {'on' if v else 'off'}" for k, v in last.__dict__.items())


def _gate(device: Any, name: str, yes: bool, out: TextIO, ask: Callable[[str], str]) -> int:
    print(f"{name}: inputs now: {_describe_inputs(_pump(device, 0.3))}", file=out)
    timed = "board-timed" if device._board.board_timed else "host-timed"
    if not yes:
        answer = ask(f"Pulse the OPEN relay of {name} once ({timed})? The gate will move. "
                     "[y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print(f"{name}: not pulsed", file=out)
            return 0
    done = [o for o in device.execute(DeviceCommand("selftest", "open", {}))
            if isinstance(o, CommandDone)]
    if not done or not done[0].ok:
        print(f"{name}: open refused: {done[0].detail if done else '?'}", file=out)
        return 1
    seen = _pump(device, 3.0)
    states = [o for o in seen if isinstance(o, GateInputs)]
    reached = ("the open limit was reached" if any(o.open_limit for o in states) else
               "the open limit was not reached (no limit wired, or the arm did not move)")
    print(f"{name}: OPEN pulsed ({timed}); {reached}; inputs now: "
          f"{_describe_inputs(seen)}", file=out)
    for o in seen:
        if isinstance(o, GateAlarm):
            print(f"{name}: alarm {o.kind}: {o.detail}", file=out)
        elif isinstance(o, GatePassage):
            print(f"{name}: passage {o.count} of {o.admitted} admitted", file=out)
    return 1 if any(isinstance(o, GateAlarm) and o.kind == "jam" for o in seen) else 0


def _printer(device: Any, cfg: GatedConfig, name: str, out: TextIO) -> int:
    doc = test_ticket_document(cfg)
    result = [o for o in device.execute(DeviceCommand("selftest", "print", {"ticket": doc}))
              if isinstance(o, CommandDone | PrinterStatus)]
    done = next(o for o in result if isinstance(o, CommandDone))
    if not done.ok:
        print(f"{name}: test ticket not printed: {done.detail}", file=out)
        return 1
    if done.detail == "sent_unconfirmed":
        print(f"{name}: test ticket sent; a one-way printer cannot confirm it: look at the "
              "paper (paper out is not detected)", file=out)
    else:
        print(f"{name}: test ticket printed and confirmed by the printer's status", file=out)
    return 0


def _reader(device: Any, name: str, wait_s: float, out: TextIO) -> int:
    print(f"{name}: present a card within {wait_s:g} s", file=out, flush=True)
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        for o in device.poll(0.1):
            if isinstance(o, IdCardRead):
                valid = "long-term" if o.valid_to is None else f"to {o.valid_to}"
                expired = o.valid_to is not None and o.valid_to < date.today()
                print(f"{name}: {o.card_type}: {mask_name(o.name)} "
                      f"{mask_id_number(o.id_number)}, valid {valid}"
                      f"{' (expired)' if expired else ''}", file=out)
                return 0
            if isinstance(o, UnreadableCard):
                print(f"{name}: card unreadable: {o.reason}", file=out)
                return 1
    print(f"{name}: no card within {wait_s:g} s", file=out)
    return 1


def _camera(device: Any, name: str, seconds: float, out: TextIO) -> int:
    start = time.monotonic()
    codes = 0
    while time.monotonic() - start < seconds:
        codes += sum(1 for o in device.poll(0.1) if isinstance(o, QrRead))
    frames = getattr(device, "frames", 0)
    elapsed = time.monotonic() - start
    print(f"{name}: {frames} frames in {elapsed:.1f} s ({frames / elapsed:.1f}/s), "
          f"{codes} QR presentation(s) decoded", file=out)
    return 0 if frames else 1
