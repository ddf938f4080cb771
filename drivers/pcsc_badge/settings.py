"""``[devices.<name>]`` with ``type = "pcsc_badge"``: a contactless reader behind pcscd."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from drivers.settings import DeviceSettings


class PcscReaderConfig(DeviceSettings):
    type: Literal["pcsc_badge"]
    reader: str = Field(default="", description="substring of the PC/SC reader name; empty = any")
    poll_interval_ms: int = Field(default=200, ge=20, le=5000)
