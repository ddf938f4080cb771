"""Config ``type`` -> driver class, imported only when a device of that type is configured.

Importing lazily keeps start-up fast and lets a missing optional library (pyscard, OpenCV)
disable the one device that needs it (``DependencyMissing``) instead of the whole daemon.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from drivers.base import DependencyMissing, Device

DRIVERS: dict[str, str] = {
    "sam_idcard": "drivers.idcard_sam:SamCardReader",
    "pcsc_badge": "drivers.pcsc:PcscBadgeReader",
    "modbus_gate": "drivers.gate_modbus:ModbusGate",
    "escpos_printer": "drivers.escpos:EscposPrinter",
    "camera_qr": "drivers.camera_qr:QrCamera",
}


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


def load_optional(module: str, extra: str) -> ModuleType:
    """Import an optional library when a device opens, not at import time.

    A missing one raises ``DependencyMissing`` naming the extra to install: the supervisor
    then keeps that one device DISABLED and the rest of the daemon runs.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise DependencyMissing(
            f"{module} is not installed ({e}); pip install 'gated[{extra}]'") from e


def build_driver(name: str, config: Any, **kwargs: Any) -> Device:
    cls: Any = driver_class(config.type)
    driver: Device = cls(name, config, **kwargs)
    return driver
