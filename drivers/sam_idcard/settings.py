"""``[devices.<name>]`` with ``type = "sam_idcard"``: a GA/T 467 SAM module.

``profile`` is the transport: ``serial`` (default: UART, RS-232 or a USB-serial chip) or
``usb`` (a desktop reader that is a vendor-class USB device carrying the same frames over
bulk or interrupt endpoints, through pyusb and Debian's libusb). Both take ``init``: request
bodies sent once after the module answered its status (some modules want "set max RF
bytes" first; the command is the vendor's, see its manual).
"""

from __future__ import annotations

import re
from typing import Literal, Protocol

from pydantic import Field, field_validator

from drivers.settings import Axis, DeviceSettings, Strict, Variants

#: what ``baudrate = "auto"`` tries, in order: the modules' default first
AUTO_BAUDRATES = (115200, 57600, 38400, 19200, 9600)
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
_USB_ID = re.compile(r"^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}$")


class SamCommon(DeviceSettings):
    type: Literal["sam_idcard"]
    poll_interval_ms: int = Field(default=250, ge=20, le=5000)
    # Twice the longest stall seen on a real module (116 ms; find answers in ~20 ms): the
    # wait only matters when the module is silent, and three misses in a row take it offline.
    find_timeout_ms: int = Field(default=250, ge=20, le=2000)
    read_timeout_ms: int = Field(default=2000, ge=200, le=10000)
    init: list[str] = Field(
        default_factory=list,
        description="request bodies (CMD PARA [DATA], hex) sent after the status at open; "
        "each must be answered 90")

    @field_validator("init")
    @classmethod
    def _hex_bodies(cls, v: list[str]) -> list[str]:
        for body in v:
            compact = body.replace(" ", "")
            if not _HEX.match(compact) or len(compact) < 4:
                raise ValueError(f"init command {body!r} must be hex bytes, CMD PARA [DATA]")
        return [b.replace(" ", "").upper() for b in v]


class SerialSam(Strict):
    profile: Literal["serial"] = "serial"
    port: str
    baudrate: int | Literal["auto"] = Field(
        default=115200, description="the module's line speed, or \"auto\": "
        "115200, 57600, 38400, 19200 and 9600 are tried with the status command")

    @field_validator("baudrate")
    @classmethod
    def _positive(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v <= 0:
            raise ValueError("baudrate must be positive")
        return v


class UsbSam(Strict):
    profile: Literal["usb"]
    usb_id: str = Field(default="0400:c35a", description="vendor:product, hex (lsusb)")
    usb_serial: str = Field(default="", description="the device's serial number, when "
                                                    "two readers have the same id")
    interface: int = Field(default=0, ge=0, le=31)

    @field_validator("usb_id")
    @classmethod
    def _usb_id(cls, v: str) -> str:
        if not _USB_ID.match(v):
            raise ValueError(f"usb_id {v!r} must be vendor:product in hex, e.g. 0400:c35a")
        return v.lower()


class SamSettings(Protocol):
    """What the reader driver reads of either transport's model (mypy's view of them)."""

    profile: str
    poll_interval_ms: int
    find_timeout_ms: int
    read_timeout_ms: int
    init: list[str]


class SamReaderConfig(SerialSam, SamCommon):
    """A module on a serial line: the default, and every table written before profiles."""


SAM_SETTINGS = Variants(SamCommon, [Axis("profile", "serial", {"serial": SerialSam,
                                                               "usb": UsbSam})],
                        suffix="Reader", prebuilt={"serial": SamReaderConfig})

__all__ = ["AUTO_BAUDRATES", "SAM_SETTINGS", "SamReaderConfig", "SamSettings"]
