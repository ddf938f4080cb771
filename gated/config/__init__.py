"""The one TOML file local IT edits: its model (``model``, ``hall``, ``hall_web``) and its
reading (``loader``).

Device sections are the settings models of the drivers (``drivers.registry``), so this package
never names a device type. The names of ``model`` and ``loader`` load on first use (PEP 562):
they pull in every driver's settings model and the run-time checks, which the hall's web
process, reading only its sections through ``load_hall_view``, does not need in memory.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gated.config.common import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    ConfigProblem,
    LogConfig,
    LogFormat,
    LogLevel,
)
from gated.config.files import (
    DIR_MODE,
    FILE_MODE,
    SECRET_FORBIDDEN,
    UMASK,
    secret_problem,
    tighten,
    too_open,
)
from gated.config.hall import (
    WEEKDAYS,
    AppointmentsConfig,
    PriorityConfig,
    QueueConfig,
    RatingConfig,
    RatingLevel,
    ScheduleConfig,
    ServiceConfig,
    TicketConfig,
    ZoneConfig,
    ZoneKind,
    ZoneMode,
    parse_ranges,
)
from gated.config.hall_web import (
    HallRole,
    HallUser,
    HallView,
    HallWebConfig,
    VoiceConfig,
    load_hall_view,
)

if TYPE_CHECKING:
    from gated.config.loader import check_config, load_config, parse_config
    from gated.config.model import (
        BoothConfig,
        DeviceConfig,
        GatedConfig,
        MqttConfig,
        OutboxConfig,
        SiteConfig,
        SupervisionConfig,
        TlsConfig,
    )

_LAZY = {"check_config": "loader", "load_config": "loader", "parse_config": "loader",
         "BoothConfig": "model", "DeviceConfig": "model", "GatedConfig": "model",
         "MqttConfig": "model", "OutboxConfig": "model", "SiteConfig": "model",
         "SupervisionConfig": "model", "TlsConfig": "model"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gated.config.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_CONFIG_PATH", "DIR_MODE", "FILE_MODE", "SECRET_FORBIDDEN", "UMASK", "WEEKDAYS",
    "AppointmentsConfig", "BoothConfig", "ConfigError", "ConfigProblem", "DeviceConfig",
    "GatedConfig", "HallRole", "HallUser", "HallView", "HallWebConfig", "LogConfig",
    "LogFormat", "LogLevel", "MqttConfig", "OutboxConfig", "PriorityConfig", "QueueConfig",
    "RatingConfig", "RatingLevel", "ScheduleConfig", "ServiceConfig", "SiteConfig",
    "SupervisionConfig", "TicketConfig", "TlsConfig", "VoiceConfig", "ZoneConfig", "ZoneKind",
    "ZoneMode", "check_config", "load_config", "load_hall_view", "parse_config",
    "parse_ranges", "secret_problem", "tighten", "too_open",
]
