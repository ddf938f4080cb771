"""Device type name -> settings model and driver class: the one place a driver is registered.

The type name is the literal of the settings model's ``type`` field, so it is written once.
Settings models are imported here (they are small pydantic models, and the config needs them
to validate ``[devices.<name>]`` tables); driver classes are imported only when a device of
that type is configured, which keeps start-up fast and lets a missing optional library
(pyscard, OpenCV) disable the one device that needs it (``DependencyMissing``) instead of the
whole daemon.

Adding a driver: its package under ``drivers/``, one line in ``_DRIVERS`` below, and its
section in ``config/gated.example.toml``.
"""

from __future__ import annotations

import importlib
from typing import Any

from drivers.base import DependencyMissing, Device
from drivers.camera_qr.settings import QrCameraConfig
from drivers.escpos_printer.settings import EscposPrinterConfig
from drivers.modbus_gate.settings import ModbusGateConfig
from drivers.pcsc_badge.settings import PcscReaderConfig
from drivers.sam_idcard.settings import SamReaderConfig
from drivers.settings import DeviceSettings

_DRIVERS: tuple[tuple[type[DeviceSettings], str], ...] = (
    (SamReaderConfig, "drivers.sam_idcard.driver:SamCardReader"),
    (PcscReaderConfig, "drivers.pcsc_badge.driver:PcscBadgeReader"),
    (ModbusGateConfig, "drivers.modbus_gate.driver:ModbusGate"),
    (EscposPrinterConfig, "drivers.escpos_printer.driver:EscposPrinter"),
    (QrCameraConfig, "drivers.camera_qr.driver:QrCamera"),
)

SETTINGS: dict[str, type[DeviceSettings]] = {s.type_name(): s for s, _ in _DRIVERS}
DRIVERS: dict[str, str] = {s.type_name(): target for s, target in _DRIVERS}


def settings_models() -> tuple[type[DeviceSettings], ...]:
    """Every registered settings model, in registration order (the config's device union)."""
    return tuple(SETTINGS.values())


def driver_class(type_name: str) -> type[Device]:
    try:
        target = DRIVERS[type_name]
    except KeyError:
        raise ValueError(f"no driver for device type {type_name!r}") from None
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise DependencyMissing(
            f"driver {module_name} cannot be imported: {e}; install the matching extra "
            f"(pip install 'gated[pcsc]' or 'gated[camera]')") from e
    cls: type[Device] = getattr(module, cls_name)
    return cls


def build_driver(name: str, config: DeviceSettings, **kwargs: Any) -> Device:
    cls: Any = driver_class(config.type_name())
    driver: Device = cls(name, config, **kwargs)
    return driver
