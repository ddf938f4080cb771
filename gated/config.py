"""The one TOML file local IT edits, as a pydantic model tree.

``load_config`` either returns a valid ``GatedConfig`` or raises ``ConfigError`` carrying every
problem at once, each with its dotted path, the line in the file where it can be found, and a
did-you-mean for misspelled keys, so that one run of ``gated check-config`` finds them all.
"""

from __future__ import annotations

import difflib
import enum
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, Field, ValidationError, model_validator

from drivers.registry import settings_models
from drivers.settings import DeviceSettings, Strict, ZonedSettings
from gated.config_policy import (
    PriorityConfig,
    QueueConfig,
    ScheduleConfig,
    ServiceConfig,
    TicketConfig,
    ZoneConfig,
    ZoneKind,
)

DEFAULT_CONFIG_PATH = Path("/etc/gated/gated.toml")
_SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"


_Strict = Strict

if TYPE_CHECKING:
    DeviceConfig = DeviceSettings
else:  # the union of every registered driver's settings, told apart by their ``type``
    DeviceConfig = Annotated[Union[settings_models()], Field(discriminator="type")]  # noqa: UP007


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogFormat(enum.StrEnum):
    AUTO = "auto"  # console on a terminal, JSON lines otherwise (systemd journal)
    JSON = "json"
    CONSOLE = "console"


class SiteConfig(_Strict):
    id: str = Field(pattern=_SLUG, description="MQTT topic segment; lower-case slug")
    name: str = ""
    hall_name: str = "便民服务中心"
    timezone: str = "Asia/Shanghai"
    key_file: Path = Field(
        default=Path("/etc/gated/site.key"),
        description="secret for pseudonyms; kept out of this file on purpose",
    )


class BoothConfig(_Strict):
    id: str = Field(pattern=_SLUG)
    name: str = ""


class LogConfig(_Strict):
    level: LogLevel = LogLevel.INFO
    format: LogFormat = LogFormat.AUTO


class OutboxConfig(_Strict):
    max_rows: int = Field(default=200_000, ge=100)
    max_bytes: int = Field(default=128 * 1024 * 1024, ge=64 * 1024)
    reserved_fraction: float = Field(
        default=0.1, ge=0.0, le=0.5, description="share kept free for alarms and assist requests"
    )
    retention_days: float = Field(default=30.0, gt=0)
    max_batch: int = Field(default=512, ge=1, le=10_000)


class SupervisionConfig(_Strict):
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)


class TlsConfig(_Strict):
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


class MqttConfig(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: str = Field(default="5", pattern=r"^(5|3\.1\.1)$")
    client_id: str = Field(default="", description="default: gated-<site>-<booth>")
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    tls: TlsConfig | None = None
    username_file: Path | None = None
    password_file: Path | None = None
    max_inflight: int = Field(default=32, ge=1, le=1000)
    replay_rate: float = Field(default=500.0, gt=0, description="events/s while replaying backlog")
    replay_burst: int = Field(default=200, ge=1)
    max_attempts: int = Field(default=5, ge=1, description="refusals before dead-letter")
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    status_interval_s: float = Field(default=30.0, gt=0)
    metrics_interval_s: float = Field(default=60.0, gt=0)
    command_key_file: Path | None = Field(
        default=None, description="HMAC key for gate/mode commands; none = those are refused"
    )
    command_max_skew_s: float = Field(default=30.0, gt=0)
    replay_share: float = Field(
        default=0.5, gt=0, le=1, description="in-flight share kept for the backlog"
    )
    session_expiry_s: int = Field(default=7 * 86400, ge=0, description="MQTT 5 persistent session")
    command_max_bytes: int = Field(default=16 * 1024, ge=256, description="larger commands refused")
    max_message_bytes: int = Field(
        default=256 * 1024, ge=1024, description="larger events go to dead_letter unsent"
    )


def _default_zones() -> dict[str, ZoneConfig]:
    return {
        "hall": ZoneConfig(name="便民服务大厅", kind=ZoneKind.PUBLIC),
        "office": ZoneConfig(name="办公区", kind=ZoneKind.OFFICE, fail_open=False),
    }


def _default_services() -> dict[str, ServiceConfig]:
    return {"general": ServiceConfig(name="综合窗口", prefix="A")}


class GatedConfig(_Strict):
    site: SiteConfig
    booth: BoothConfig
    state_dir: Path = Path("/var/lib/gated")
    log: LogConfig = LogConfig()
    outbox: OutboxConfig = OutboxConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    mqtt: MqttConfig = MqttConfig()
    zones: dict[str, ZoneConfig] = Field(default_factory=_default_zones)
    schedule: ScheduleConfig = ScheduleConfig()
    services: dict[str, ServiceConfig] = Field(default_factory=_default_services)
    queue: QueueConfig = QueueConfig()
    priority: PriorityConfig = PriorityConfig()
    ticket: TicketConfig = TicketConfig()
    devices: dict[str, DeviceConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cross_checks(self) -> GatedConfig:
        problems = []
        for name, dev in self.devices.items():
            if isinstance(dev, ZonedSettings) and dev.zone not in self.zones:
                problems.append(
                    f"devices.{name}.zone: unknown zone {dev.zone!r}; "
                    f"known zones: {', '.join(sorted(self.zones)) or 'none'}"
                )
        if self.queue.default_service not in self.services:
            problems.append(
                f"queue.default_service: {self.queue.default_service!r} is not a [services] entry"
            )
        for counter, services in self.queue.counters.items():
            for s in services:
                if s not in self.services:
                    problems.append(f"queue.counters.{counter}: unknown service {s!r}; "
                                    f"known services: {', '.join(sorted(self.services))}")
        prefixes: dict[str, str] = {}
        for sid, svc in self.services.items():
            if svc.prefix in prefixes:
                problems.append(
                    f"services.{sid}.prefix: {svc.prefix!r} already used by {prefixes[svc.prefix]}"
                )
            prefixes[svc.prefix] = sid
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"gated-{self.site.id}-{self.booth.id}"


# --------------------------------------------------------------------------- loading


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


def load_config(path: str | Path) -> GatedConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), [ConfigProblem("", "file not found; pass -c FILE or create "
                                                 "it from config/gated.example.toml")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(p), [ConfigProblem("", f"cannot read: {e}")]) from None
    return parse_config(text, source=str(p))


def parse_config(text: str, *, source: str = "<string>") -> GatedConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ConfigError(source, [ConfigProblem(
            "", f"not valid TOML: {e}", int(m.group(1)) if m else None)]) from None
    try:
        return GatedConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(source, _problems(e, data, text)) from None


def _problems(err: ValidationError, data: dict[str, Any], text: str) -> list[ConfigProblem]:
    lines = _key_lines(text)
    out: list[ConfigProblem] = []
    for item in err.errors():
        loc = [str(x) for x in item["loc"]]
        loc = _strip_union_tags(loc, data)
        path = ".".join(loc)
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown key" + _did_you_mean(loc, data)
        elif item["type"] == "union_tag_invalid":
            msg = f"unknown device type; {msg}"
        elif item["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        out.append(ConfigProblem(path, msg, _line_of(loc, lines)))
    return out


def _strip_union_tags(loc: list[str], data: dict[str, Any]) -> list[str]:
    out: list[str] = []
    node: Any = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            out.append(part)
            node = node[int(part)]
        elif isinstance(node, dict) and node.get("type") == part:
            continue  # the discriminator value pydantic inserts
        else:
            out.append(part)
            node = None
    return out


def _did_you_mean(loc: list[str], data: dict[str, Any]) -> str:
    known = _known_keys(loc[:-1], data)
    match = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    if match:
        return f"; did you mean {match[0]!r}?"
    if known:
        return f"; known keys here: {', '.join(sorted(known))}"
    return ""


def _known_keys(loc: list[str], data: dict[str, Any]) -> list[str]:
    """Field names valid at ``loc``, following dict values and device ``type`` tags."""
    from typing import get_args, get_origin

    model: Any = GatedConfig
    node: Any = data
    for part in loc:
        node = node.get(part) if isinstance(node, dict) else None
        if model is None:
            return []
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            model = field.annotation if field else None
        elif get_origin(model) is dict:
            model = get_args(model)[1]
        model = _resolve(model, node, settings_models())
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _resolve(model: Any, node: Any, device_models: tuple[Any, ...]) -> Any:
    from typing import Annotated, get_args, get_origin

    if get_origin(model) is Annotated:
        model = get_args(model)[0]
    args = [a for a in get_args(model) if a is not type(None)]
    if get_origin(model) is dict:
        return model
    if args and all(isinstance(a, type) and issubclass(a, BaseModel) for a in args):
        if len(args) == 1:
            return args[0]
        tag = node.get("type") if isinstance(node, dict) else None
        for a in args:
            if a.model_fields.get("type") and tag in get_args(a.model_fields["type"].annotation):
                return a
        return None
    return model


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each dotted key path to the line defining it (tables and plain keys)."""
    out: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for n, line in enumerate(text.splitlines(), start=1):
        if m := _HEADER.match(line):
            table = tuple(_unquote(x) for x in m.group(1).split("."))
            out.setdefault(table, n)
        elif m := _KEY.match(line):
            key = tuple(_unquote(x) for x in m.group(1).split("."))
            out.setdefault(table + key, n)
    return out


def _unquote(s: str) -> str:
    return s.strip().strip("\"'")


def _line_of(loc: list[str], lines: dict[tuple[str, ...], int]) -> int | None:
    for i in range(len(loc), 0, -1):
        if (key := tuple(loc[:i])) in lines:
            return lines[key]
    return None
