"""``[devices.<name>]`` with ``type = "escpos_printer"``: an ESC/POS ticket printer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from drivers.settings import SerialSettings


class EscposPrinterConfig(SerialSettings):
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
