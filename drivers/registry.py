"""Device type name -> settings model and driver class: the one place a driver is registered.

The type name is the literal of the settings model's ``type`` field, so it is written once.
Settings models are imported here (they are small pydantic models, and the config needs them
to validate ``[devices.<name>]`` tables); driver classes are imported only when a device of
that type is configured, which keeps start-up fast and lets a missing optional library
(pyscard, OpenCV) disable the one device that needs it (``DependencyMissing``) instead of the
whole daemon.

A type with profiles (``drivers.settings.Variants``: relay boards, printer transports) is
registered with its ``Variants``; each of its models may name a driver class of its own
(``DeviceSettings.driver``), else the type's is used.

Adding a driver: its package under ``drivers/``, one line in ``_DRIVERS`` below, and its
section in ``config/gated.example.toml``.
"""

from __future__ import annotations

import importlib
from typing import Any

from drivers.base import DependencyMissing, Device
from drivers.camera_qr.settings import QrCameraConfig
from drivers.escpos_printer.settings import PRINTER_SETTINGS
from drivers.modbus_gate.settings import GATE_SETTINGS
from drivers.pcsc_badge.settings import PcscReaderConfig
from drivers.sam_idcard.settings import SAM_SETTINGS
from drivers.settings import DeviceSettings, Variants

_DRIVERS: tuple[tuple[type[DeviceSettings] | Variants, str], ...] = (
    (SAM_SETTINGS, "drivers.sam_idcard.driver:SamCardReader"),
    (PcscReaderConfig, "drivers.pcsc_badge.driver:PcscBadgeReader"),
    (GATE_SETTINGS, "drivers.modbus_gate.driver:ModbusGate"),
    (PRINTER_SETTINGS, "drivers.escpos_printer.driver:EscposPrinter"),
    (QrCameraConfig, "drivers.camera_qr.driver:QrCamera"),
)


def _type_name(entry: type[DeviceSettings] | Variants) -> str:
    return entry.type_name if isinstance(entry, Variants) else entry.type_name()


SETTINGS: dict[str, type[DeviceSettings] | Variants] = {_type_name(s): s for s, _ in _DRIVERS}
DRIVERS: dict[str, str] = {_type_name(s): target for s, target in _DRIVERS}


def settings_models() -> tuple[type[DeviceSettings], ...]:
    """Every settings model of every registered type (each profile's), in registration order."""
    out: list[type[DeviceSettings]] = []
    for entry in SETTINGS.values():
        out += entry.models.values() if isinstance(entry, Variants) else [entry]
    return tuple(out)


def device_union_members() -> tuple[Any, ...]:
    """What the config's ``devices`` union is made of: a model, or a profile's tagged union."""
    return tuple(e.annotated() if isinstance(e, Variants) else e for e in SETTINGS.values())


def model_for(table: Any) -> type[DeviceSettings] | None:
    """The settings model a raw ``[devices.<name>]`` table is validated with, if any."""
    entry = SETTINGS.get(str(table.get("type"))) if isinstance(table, dict) else None
    if isinstance(entry, Variants):
        return entry.model_for(table)
    return entry


def variant_tags(table: Any) -> set[str]:
    """The tags pydantic puts in an error's location for this table (type, profile combo)."""
    if not isinstance(table, dict):
        return set()
    tags = {str(table.get("type"))}
    entry = SETTINGS.get(str(table.get("type")))
    if isinstance(entry, Variants) and (tag := entry.tag(table)) is not None:
        tags.add(tag)
    return tags


def variant_problem(table: Any) -> tuple[str, str] | None:
    """(key, message) when a table's profile key names no profile of its type."""
    entry = SETTINGS.get(str(table.get("type"))) if isinstance(table, dict) else None
    return entry.problem(table) if isinstance(entry, Variants) else None


def driver_class(type_name: str, config: DeviceSettings | None = None) -> type[Device]:
    try:
        target = DRIVERS[type_name]
    except KeyError:
        raise ValueError(f"no driver for device type {type_name!r}") from None
    if config is not None and config.driver:
        target = config.driver
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
    cls: Any = driver_class(config.type_name(), config)
    driver: Device = cls(name, config, **kwargs)
    return driver
