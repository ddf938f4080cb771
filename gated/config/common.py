"""What every reader of the config file shares and what loads nothing heavy: the default
path, the error carrying every problem, and the log settings. The hall's web process reads the
same file (``hall_web.load_hall_view``) without the device models, so these live here."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from drivers.settings import Strict

DEFAULT_CONFIG_PATH = Path("/etc/gated/gated.toml")


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.path or '<file>'}{where}: {self.message}"


class ConfigError(Exception):
    """Every problem of one config file; ``str()`` lists them one per line."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(
            f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems)
        )


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogFormat(enum.StrEnum):
    AUTO = "auto"  # console on a terminal, JSON lines otherwise (systemd journal)
    JSON = "json"
    CONSOLE = "console"


class LogConfig(Strict):
    level: LogLevel = LogLevel.INFO
    format: LogFormat = LogFormat.AUTO
