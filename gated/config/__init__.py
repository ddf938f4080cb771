"""The one TOML file local IT edits: its model (``model``, ``hall``) and its reading (``loader``).

Device sections are the settings models of the drivers (``drivers.registry``), so this package
never names a device type.
"""

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
from gated.config.loader import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    ConfigProblem,
    check_config,
    load_config,
    parse_config,
)
from gated.config.model import (
    BoothConfig,
    DeviceConfig,
    GatedConfig,
    LogConfig,
    LogFormat,
    LogLevel,
    MqttConfig,
    OutboxConfig,
    SiteConfig,
    SupervisionConfig,
    TlsConfig,
)

__all__ = [
    "DEFAULT_CONFIG_PATH", "DIR_MODE", "FILE_MODE", "SECRET_FORBIDDEN", "UMASK", "WEEKDAYS",
    "AppointmentsConfig", "BoothConfig", "ConfigError", "ConfigProblem", "DeviceConfig",
    "GatedConfig", "LogConfig", "LogFormat", "LogLevel", "MqttConfig", "OutboxConfig",
    "PriorityConfig", "QueueConfig", "RatingConfig", "RatingLevel", "ScheduleConfig",
    "ServiceConfig", "SiteConfig", "SupervisionConfig", "TicketConfig", "TlsConfig", "ZoneConfig",
    "ZoneKind", "ZoneMode", "check_config", "load_config", "parse_config", "parse_ranges",
    "secret_problem", "tighten", "too_open",
]
