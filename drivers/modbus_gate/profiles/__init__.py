"""Relay board profiles: ``profile = "<name>"`` in a ``modbus_gate`` table.

Each entry is the profile's settings mixin and the ``RelayProtocol`` that speaks its bytes.
Adding a board: a module here, one line below, a section in config/gated.example.toml.
"""

from __future__ import annotations

from typing import Any

from drivers.modbus_gate.profiles.base import RelayProtocol
from drivers.modbus_gate.profiles.coil import CoilBoard, CoilBoardSettings
from drivers.modbus_gate.profiles.generic import GenericBoard, GenericBoardSettings
from drivers.modbus_gate.profiles.registers import RegisterBoard, RegisterBoardSettings
from drivers.modbus_gate.profiles.waveshare import (
    WaveshareV1Board,
    WaveshareV1Settings,
    WaveshareV2Board,
    WaveshareV2Settings,
)
from drivers.settings import Strict

DEFAULT_PROFILE = "coil"

PROFILES: dict[str, tuple[type[Strict], type[RelayProtocol]]] = {
    "coil": (CoilBoardSettings, CoilBoard),
    "waveshare_v2": (WaveshareV2Settings, WaveshareV2Board),
    "waveshare_v1": (WaveshareV1Settings, WaveshareV1Board),
    "r4d3b16": (RegisterBoardSettings, RegisterBoard),
    "generic": (GenericBoardSettings, GenericBoard),
}


def protocol_for(config: Any) -> RelayProtocol:
    """The board protocol of a gate's settings (its ``profile``)."""
    return PROFILES[config.profile][1](config)


__all__ = ["DEFAULT_PROFILE", "PROFILES", "RelayProtocol", "protocol_for"]
