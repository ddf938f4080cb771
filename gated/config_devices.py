"""Device sections of the config: ``[devices.<name>]`` tables chosen by their ``type`` key.

Each model only holds settings; the driver that uses it lives in ``drivers/``. The registry in
``drivers/registry.py`` maps each ``type`` to its driver class, imported only when configured so
that a missing optional library (pyscard, OpenCV) disables one device, not the daemon.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SerialDevice(_Strict):
    """A device on a serial line. ``port`` takes anything ``serial.serial_for_url`` does:
    ``/dev/serial/by-id/...`` in the field, a pty path or ``loop://`` in tests, and
    ``spy:///dev/ttyUSB0?file=/tmp/trace.txt`` to dump traffic during an installation."""

    enabled: bool = True
    port: str
    baudrate: int = Field(default=9600, gt=0)


class SamReaderConfig(SerialDevice):
    type: Literal["sam_idcard"]
    baudrate: int = Field(default=115200, gt=0)
    poll_interval_ms: int = Field(default=250, ge=20, le=5000)
    find_timeout_ms: int = Field(default=100, ge=20, le=2000)
    read_timeout_ms: int = Field(default=2000, ge=200, le=10000)


class PcscReaderConfig(_Strict):
    type: Literal["pcsc_badge"]
    enabled: bool = True
    reader: str = Field(default="", description="substring of the PC/SC reader name; empty = any")
    poll_interval_ms: int = Field(default=200, ge=20, le=5000)


class GateCoils(_Strict):
    open: int = Field(default=0, ge=0, le=0xFFFF)
    close: int = Field(default=1, ge=0, le=0xFFFF)
    stop: int = Field(default=2, ge=0, le=0xFFFF)
    lamp: int | None = Field(default=3, ge=0, le=0xFFFF)


class GateInputMap(_Strict):
    """Discrete input numbers (FC02) of the relay board; ``None`` = not wired."""

    open_limit: int | None = Field(default=0, ge=0, le=0xFFFF)
    closed_limit: int | None = Field(default=1, ge=0, le=0xFFFF)
    safety_beam: int | None = Field(default=2, ge=0, le=0xFFFF)
    fire_alarm: int | None = Field(default=3, ge=0, le=0xFFFF)
    assist_button: int | None = Field(
        default=None, ge=0, le=0xFFFF,
        description="visitor's assist button: the next tap gets priority help and an escort")
    escalation_button: int | None = Field(
        default=None, ge=0, le=0xFFFF,
        description="\"办不成事找局长\" button: opens an escalation for the booth")
    active_low: bool = False

    @model_validator(mode="after")
    def _one_read_covers_them(self) -> GateInputMap:
        """All wired inputs are read with one FC02 request, which covers 2000 at most; one
        input cannot serve two purposes."""
        named = {k: v for k, v in self.model_dump().items() if k != "active_low"}
        wired = [n for n in named.values() if n is not None]
        if wired and max(wired) - min(wired) >= 2000:
            raise ValueError("wired inputs must lie within 2000 numbers of each other "
                             "(one Modbus read covers them all)")
        for n in set(wired):
            users = [k for k, v in named.items() if v == n]
            if len(users) > 1:
                raise ValueError(f"input {n} is wired to both {users[0]} and {users[1]}")
        return self


class ModbusGateConfig(SerialDevice):
    type: Literal["modbus_gate"]
    zone: str
    address: int = Field(default=1, ge=1, le=247)
    coils: GateCoils = GateCoils()
    inputs: GateInputMap = GateInputMap()
    pulse_ms: int = Field(default=500, ge=50, le=5000)
    vendor_pulse: bool = Field(default=False, description="Waveshare FC05 0x02xx flash command")
    response_timeout_ms: int = Field(default=200, ge=20, le=5000)
    poll_interval_ms: int = Field(default=100, ge=20, le=5000)
    auto_close_s: float = Field(default=8.0, gt=0, le=600)
    travel_timeout_s: float = Field(default=6.0, gt=0, le=120)
    held_open_alarm_s: float = Field(default=60.0, gt=0, le=3600)


class EscposPrinterConfig(SerialDevice):
    type: Literal["escpos_printer"]
    baudrate: int = Field(default=9600, gt=0)
    columns: int = Field(default=48, ge=24, le=64, description="characters per line, font A")
    qr_module_size: int = Field(default=6, ge=1, le=16)
    status_interval_s: float = Field(default=2.0, gt=0, le=60)
    response_timeout_ms: int = Field(default=500, ge=50, le=5000)
    auto_status_back: bool = False
    gb18030_four_byte: bool = Field(
        default=False, description="the printer's font has GB18030's four-byte range; "
        "if not, such characters print as '?'")
    print_settle_ms: int = Field(
        default=800, ge=0, le=10000,
        description="after sending a ticket, wait this long before the status check that "
        "confirms it (printing takes time; paper can run out mid-ticket)")


class QrCameraConfig(_Strict):
    type: Literal["camera_qr"]
    enabled: bool = True
    source: str = Field(description="/dev/video0, an rtsp:// URL, or an image/video file")
    fps: float = Field(default=5.0, gt=0, le=30)
    detector: Literal["aruco", "classic"] = "aruco"
    rearm_s: float = Field(
        default=2.0, gt=0, le=60,
        description="a payload must be out of view this long before it counts as a new "
        "presentation (a QR held in front of the camera is read once)")


DeviceConfig = Annotated[
    SamReaderConfig | PcscReaderConfig | ModbusGateConfig | EscposPrinterConfig | QrCameraConfig,
    Field(discriminator="type"),
]
