"""What ``gated probe`` found, and the ``[devices.<name>]`` tables it suggests for it.

A ``Finding`` is one device that answered (or one seen but not talked to: a camera node, a
USB id); ``config_sections`` turns the findings into TOML that ``gated check-config``
accepts as it is, with comments saying what to check (zone, wiring) before pasting it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class Kind(enum.StrEnum):
    SAM = "sam"
    PRINTER = "printer"
    MODBUS = "modbus"
    CAMERA = "camera"
    USB = "usb"


@dataclass(frozen=True)
class Finding:
    kind: Kind
    where: str  # port, device node or USB id
    summary: str  # one line for the operator
    settings: dict[str, Any] = field(default_factory=dict)  # keys for the device's table
    notes: tuple[str, ...] = ()


_NAMES = {Kind.SAM: "id_reader", Kind.PRINTER: "printer", Kind.MODBUS: "gate",
          Kind.CAMERA: "qr_camera"}
_TYPES = {Kind.SAM: "sam_idcard", Kind.PRINTER: "escpos_printer", Kind.MODBUS: "modbus_gate",
          Kind.CAMERA: "camera_qr"}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def config_sections(findings: Sequence[Finding], *, site: str = "probe",
                    booth: str = "booth1") -> str:
    """A config file: ``[site]`` and ``[booth]`` placeholders, then one table per device
    that a driver can use (USB ids without a profile are listed as comments only)."""
    out = ["# gated probe: ready-to-paste [devices.*] tables. Check each zone and the",
           "# wiring (coils, inputs) before use; this file passes gated check-config --no-files.",
           "[site]", f'id = "{site}"', "", "[booth]", f'id = "{booth}"', ""]
    counts: dict[Kind, int] = {}
    for f in findings:
        if f.kind not in _TYPES or not f.settings:
            out += [f"# {f.kind}: {f.where}: {f.summary}", *(f"#   {n}" for n in f.notes), ""]
            continue
        counts[f.kind] = counts.get(f.kind, 0) + 1
        name = _NAMES[f.kind] + ("" if counts[f.kind] == 1 else f"_{counts[f.kind]}")
        out += [f"[devices.{name}]  # {f.summary}", *(f"# {n}" for n in f.notes),
                f'type = "{_TYPES[f.kind]}"']
        out += [f"{k} = {_toml(v)}" for k, v in f.settings.items()]
        out.append("")
    return "\n".join(out)
