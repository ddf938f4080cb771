"""``gated probe``: what is plugged into this box, and the config tables for it.

The first thing local IT runs on a new booth. It lists the serial ports (and their stable
``/dev/serial/by-id`` names), USB printer-class nodes, USB devices and video nodes; asks each
serial port what answers (``drivers.probe.ports``: an ESC/POS printer, a SAM module at each
of its speeds, Modbus slaves 1-16 and the function codes they accept); recognises the USB
ID card readers it knows; tries each camera for a frame. It only reads: no relay is ever
switched, no ticket printed. ``config_sections`` prints the findings as TOML that
``gated check-config --no-files`` accepts.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from typing import Any

from drivers.probe.findings import Finding, Kind, config_sections
from drivers.probe.ports import MODBUS_BAUDS, probe_port

#: USB ids of ID card readers that carry raw GA/T 467 frames (docs/PROTOCOLS-hardware.md)
KNOWN_USB_READERS = {(0x0400, 0xC35A): "ID card reader (GA/T 467 frames over bulk endpoints)"}


def serial_ports() -> list[str]:
    """Every serial port the system lists, by its stable name where one exists."""
    from serial.tools import list_ports

    by_id = {os.path.realpath(p): p for p in glob.glob("/dev/serial/by-id/*")}
    return sorted(by_id.get(p.device, p.device) for p in list_ports.comports())


def usb_findings(backend: Any = None) -> list[Finding]:
    """USB devices (needs pyusb); known ID card readers with a ready ``usb`` table."""
    try:
        import usb.core
    except ImportError:
        return [Finding(Kind.USB, "-", "pyusb not installed: USB devices not listed "
                        "(pip install 'gated[usb]')")]
    out = []
    try:
        devices = list(usb.core.find(find_all=True, backend=backend) or [])
    except usb.core.NoBackendError:
        return [Finding(Kind.USB, "-", "libusb not found (apt-get install libusb-1.0-0)")]
    for dev in devices:
        usb_id = f"{dev.idVendor:04x}:{dev.idProduct:04x}"
        known = KNOWN_USB_READERS.get((dev.idVendor, dev.idProduct))
        if known is None:
            out.append(Finding(Kind.USB, usb_id, f"USB device on bus {dev.bus}"))
            continue
        out.append(Finding(Kind.SAM, usb_id, known,
                           {"profile": "usb", "usb_id": usb_id},
                           ("answers are checked when gated opens it; gated selftest "
                            "id_reader reads a card",)))
    return out


def camera_findings(sources: Iterable[str]) -> list[Finding]:
    out = []
    for source in sources:
        try:
            import cv2
        except ImportError:
            out.append(Finding(Kind.CAMERA, source, "OpenCV not installed: not tried"))
            continue
        still = os.path.splitext(source)[1].lower() in (".png", ".jpg", ".jpeg", ".bmp")
        if still:
            ok = cv2.imread(source) is not None
        else:
            cap = cv2.VideoCapture(source)
            ok = bool(cap.isOpened() and cap.read()[0])
            cap.release()
        out.append(Finding(Kind.CAMERA, source,
                           "camera gives frames" if ok else "no frame from it",
                           {"enabled": False, "source": source} if ok else {},
                           ("enable it once [appointments] names the appointment system's "
                            "key (codes must be signed)",) if ok else ()))
    return out


def run_probe(ports: Sequence[str] | None = None, *, modbus_ids: Iterable[int] = range(1, 17),
              modbus_bauds: Sequence[int] = MODBUS_BAUDS, usb: bool = True,
              usb_backend: Any = None, cameras: Sequence[str] | None = None) -> list[Finding]:
    """Probe ``ports`` (default: every serial port listed), USB and ``cameras`` (default:
    the /dev/video* nodes)."""
    found: list[Finding] = []
    for port in serial_ports() if ports is None else ports:
        found += probe_port(port, modbus_ids=list(modbus_ids), modbus_bauds=modbus_bauds)
    for lp in sorted(glob.glob("/dev/usb/lp*")):
        found.append(Finding(Kind.PRINTER, lp, "USB printer-class device (not asked: many "
                             "never answer; status none until gated selftest shows more)",
                             {"profile": "usblp", "device": lp, "status": "none"}))
    if usb:
        found += usb_findings(usb_backend)
    found += camera_findings(sorted(glob.glob("/dev/video*")) if cameras is None else cameras)
    return found


__all__ = ["Finding", "Kind", "config_sections", "run_probe", "serial_ports"]
