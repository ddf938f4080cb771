"""``[devices.<name>]`` with ``type = "escpos_printer"``: an ESC/POS ticket printer.

``profile`` is the transport: ``serial`` (default; RS-232 or USB-serial, any pyserial URL),
``usblp`` (a USB printer-class device, ``/dev/usb/lp0``) or ``tcp`` (a network printer,
raw port 9100). The rest is the printer's: how much status it answers (``status``), its text
encoding and whether it wants ``FS &``, native or raster QR, paper width.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import Field, model_validator

from drivers.settings import Axis, DeviceSettings, Strict, Variants

PAPER_COLUMNS = {58: 32, 80: 48}  # font A characters per line
PAPER_DOTS = {58: 384, 80: 576}  # printable dots at 203 dpi


class PrinterCommon(DeviceSettings):
    type: Literal["escpos_printer"]
    status: Literal["full", "dle_eot", "none"] | None = Field(
        default=None, description="full: DLE EOT and automatic status back; dle_eot: asked "
        "every status_interval_s; none: a one-way printer, printed blind. Default: dle_eot, "
        "none for usblp")
    auto_status_back: bool = Field(default=False, description="the same as status = \"full\"")
    paper_mm: Literal[58, 80] = 80
    columns: int | None = Field(default=None, ge=24, le=64,
                                description="characters per line, font A; default by paper")
    qr: Literal["native", "raster"] = Field(
        default="native", description="native: GS ( k; raster: an image (GS v 0) for "
        "printers without native QR")
    qr_module_size: int = Field(default=6, ge=1, le=16)
    status_interval_s: float = Field(default=2.0, gt=0, le=60)
    response_timeout_ms: int = Field(default=500, ge=50, le=5000)
    encoding: Literal["gb18030", "gbk", "utf-8"] = "gb18030"
    chinese_mode: bool | None = Field(
        default=None, description="send FS & after every ESC @; default yes, no for utf-8")
    gb18030_four_byte: bool = Field(
        default=False, description="the printer's font has GB18030's four-byte range; "
        "if not, such characters print as '?'")
    print_settle_ms: int = Field(
        default=800, ge=0, le=10000,
        description="after sending a ticket, wait this long before the status check that "
        "confirms it (printing takes time; paper can run out mid-ticket)")

    @model_validator(mode="after")
    def _one_status(self) -> PrinterCommon:
        if self.auto_status_back and self.status not in (None, "full"):
            raise ValueError(f"auto_status_back = true is status = \"full\", not "
                             f"{self.status!r}: keep one of them")
        return self

    @property
    def status_mode(self) -> str:
        if self.status is not None:
            return self.status
        if self.auto_status_back:
            return "full"
        return "none" if getattr(self, "profile", "serial") == "usblp" else "dle_eot"

    @property
    def line_columns(self) -> int:
        return self.columns or PAPER_COLUMNS[self.paper_mm]

    @property
    def dots(self) -> int:
        return PAPER_DOTS[self.paper_mm]

    @property
    def sends_fs_and(self) -> bool:
        return self.chinese_mode if self.chinese_mode is not None else self.encoding != "utf-8"


class SerialTransport(Strict):
    """RS-232 or USB-serial: ``port`` is anything ``serial.serial_for_url`` takes."""

    profile: Literal["serial"] = "serial"
    port: str
    baudrate: int = Field(default=9600, gt=0)


class UsbLpTransport(Strict):
    """A USB printer-class device through the kernel's usblp driver."""

    profile: Literal["usblp"]
    device: str = Field(default="/dev/usb/lp0", description="/dev/usb/lp* (udev names too)")


class TcpTransport(Strict):
    """A network printer's raw port."""

    profile: Literal["tcp"]
    host: str
    tcp_port: int = Field(default=9100, ge=1, le=65535)


class PrinterSettings(Protocol):
    """What the printer driver reads of any transport's model (mypy's view of them)."""

    profile: str
    status_mode: str
    line_columns: int
    dots: int
    sends_fs_and: bool
    qr: str
    qr_module_size: int
    status_interval_s: float
    response_timeout_ms: int
    encoding: str
    gb18030_four_byte: bool
    print_settle_ms: int


class EscposPrinterConfig(SerialTransport, PrinterCommon):
    """A printer on a serial line: the default, and every table written before profiles."""


PRINTER_SETTINGS = Variants(PrinterCommon, [Axis("profile", "serial", {
    "serial": SerialTransport, "usblp": UsbLpTransport, "tcp": TcpTransport})],
    suffix="Printer", prebuilt={"serial": EscposPrinterConfig})


def describe(config: Any) -> str:
    """Where the printer is, for logs and messages."""
    if config.profile == "usblp":
        return str(config.device)
    if config.profile == "tcp":
        return f"{config.host}:{config.tcp_port}"
    return str(config.port)


__all__ = ["PRINTER_SETTINGS", "EscposPrinterConfig", "PrinterCommon", "PrinterSettings",
           "describe"]
