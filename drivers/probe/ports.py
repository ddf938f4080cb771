"""What answers on one serial port: an ESC/POS printer, a SAM module, Modbus slaves.

Asked in this order, each only if nothing answered before, because each question is
harmless to the other devices: ``DLE EOT 1`` and ``DLE EOT 4`` (six bytes, no line feed: a
printer answers two status bytes, a board or a module ignores them), the SAM status command
at each of the modules' speeds, then the Modbus scan (read function codes only). A one-way
printer answers nothing and may print a line of noise from the Modbus requests: it cannot be
told from an empty port (its table must be written by hand, ``status = "none"``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import serial

from drivers.base import DeviceError
from drivers.escpos_printer.codec import StatusQuery, decode_status, is_status_byte, status_request
from drivers.modbus.link import RtuLink
from drivers.probe.findings import Finding, Kind
from drivers.probe.modbus_scan import Slave, scan
from drivers.sam_idcard.codec import (
    Command,
    Frame,
    SamFrameReader,
    Status,
    build_request,
    parse_reply,
)
from drivers.sam_idcard.settings import AUTO_BAUDRATES
from drivers.serial_link import LINK_ERRORS, close_serial, open_serial

PRINTER_BAUDS = (9600, 19200, 38400, 115200)
MODBUS_BAUDS = (9600,)
REPLY_S = 0.15


def _exchange(port: str, baud: int, request: bytes, done: int | None = None) -> bytes:
    """Send ``request`` at ``baud`` and collect what comes back within ``REPLY_S`` (or until
    ``done`` bytes came)."""
    ser = open_serial(port, baudrate=baud, timeout=0.02)
    try:
        ser.reset_input_buffer()
        ser.write(request)
        out = b""
        deadline = time.monotonic() + REPLY_S
        while time.monotonic() < deadline and (done is None or len(out) < done):
            out += ser.read(max(1, ser.in_waiting))
        return out
    except LINK_ERRORS:
        return b""
    finally:
        close_serial(ser, port)


def probe_printer(port: str, bauds: Sequence[int] = PRINTER_BAUDS) -> Finding | None:
    for baud in bauds:  # two questions, two status bytes: noise seldom looks like that
        reply = _exchange(port, baud, status_request(StatusQuery.PRINTER)
                          + status_request(StatusQuery.PAPER), done=2)
        if len(reply) == 2 and all(is_status_byte(b) for b in reply):
            online = decode_status(StatusQuery.PRINTER, reply[0]).online
            return Finding(Kind.PRINTER, port, f"ESC/POS printer answering DLE EOT at {baud} "
                           f"baud ({'online' if online else 'offline'})",
                           {"port": port, "baudrate": baud, "status": "dle_eot"})
    return None


def probe_sam(port: str, bauds: Sequence[int] = AUTO_BAUDRATES) -> Finding | None:
    for baud in bauds:
        raw = _exchange(port, baud, build_request(Command.STATUS))
        frames = [f for f in SamFrameReader().feed(raw) if isinstance(f, Frame)]
        if not frames:
            continue
        try:
            reply = parse_reply(frames[0])
        except DeviceError:
            continue
        status = reply.status
        health = "SAM healthy" if status is Status.OK else (
            f"SAM status {reply.sw3:02X} ({status.meaning if status else 'unknown'})")
        return Finding(Kind.SAM, port, f"GA/T 467 SAM module at {baud} baud, {health}",
                       {"port": port, "baudrate": baud})
    return None


def probe_modbus(port: str, ids: Iterable[int], bauds: Sequence[int] = MODBUS_BAUDS,
                 ) -> list[Finding]:
    for baud in bauds:
        link = RtuLink(port, baudrate=baud, timeout_s=0.05)
        try:
            link.open()
            slaves = scan(link, ids)
        except (DeviceError, serial.SerialException):
            slaves = []
        finally:
            link.close()
        if slaves:
            return _gate_findings(port, baud, slaves)
    return []


def _gate_findings(port: str, baud: int, slaves: list[Slave]) -> list[Finding]:
    inputs = [s for s in slaves if s.family == "n4d3e16"]
    out = []
    for s in slaves:
        fcs = ", ".join(f"FC{fc:02d}" for fc in s.accepts) or "exceptions only"
        summary = (f"Modbus slave {s.address} at {baud} baud: {s.family}"
                   f"{' ' + s.firmware if s.firmware else ''} (answers {fcs})")
        if s.family == "n4d3e16":
            if not any(o.family == "r4d3b16" for o in slaves):
                out.append(Finding(Kind.MODBUS, port, summary, {},
                                   ("an input board with no R4D3B16 relay board beside it",)))
            continue
        settings: dict[str, object] = {"port": port, "baudrate": baud, "address": s.address,
                                       "zone": "hall"}
        notes = ["zone: the [zones] entry this gate serves; coils/inputs: the wiring"]
        if s.family in ("waveshare_v2", "r4d3b16"):
            settings = {"profile": s.family, **settings}
        elif s.family == "unknown":
            settings = {"profile": "generic", **settings}
            notes.append("unknown board: set write/read/relay_base/input_base (generic)")
        if s.family == "r4d3b16":
            if inputs:
                settings["inputs_address"] = inputs[0].address
            else:
                settings["inputs"] = {}
                notes.append("no N4D3E16 found: no inputs wired (no limits, beam or fire)")
        out.append(Finding(Kind.MODBUS, port, summary, settings, tuple(notes)))
    return out


def probe_port(port: str, *, modbus_ids: Iterable[int] = range(1, 17),
               modbus_bauds: Sequence[int] = MODBUS_BAUDS) -> list[Finding]:
    """Everything found on ``port`` (a printer, a module, or the Modbus slaves)."""
    for probe in (probe_printer, probe_sam):
        found = probe(port)
        if found is not None:
            return [found]
    return probe_modbus(port, modbus_ids, modbus_bauds)
