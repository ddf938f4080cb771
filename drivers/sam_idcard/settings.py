"""``[devices.<name>]`` with ``type = "sam_idcard"``: a GA/T 467 SAM module on a serial line."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from drivers.settings import SerialSettings


class SamReaderConfig(SerialSettings):
    type: Literal["sam_idcard"]
    baudrate: int = Field(default=115200, gt=0)
    poll_interval_ms: int = Field(default=250, ge=20, le=5000)
    # Twice the longest stall seen on a real module (116 ms; find answers in ~20 ms): the
    # wait only matters when the module is silent, and three misses in a row take it offline.
    find_timeout_ms: int = Field(default=250, ge=20, le=2000)
    read_timeout_ms: int = Field(default=2000, ge=200, le=10000)
