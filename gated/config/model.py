"""The one TOML file local IT edits, as a pydantic model tree: the core's own sections.

What the hall offers (zones, opening hours, services, queue, priority, tickets) is in
``gated.config.hall``; each ``[devices.<name>]`` table is the settings model of its driver,
told apart by ``type`` (``drivers.registry``). Every model is strict: unknown keys are errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Field, field_validator, model_validator

from drivers.registry import device_union_members
from drivers.settings import DeviceSettings, Strict, ZonedSettings
from gated.config.common import LogConfig
from gated.config.hall import (
    AppointmentsConfig,
    PriorityConfig,
    QueueConfig,
    RatingConfig,
    ScheduleConfig,
    ServiceConfig,
    TicketConfig,
    ZoneConfig,
    ZoneKind,
)
from gated.config.hall_web import HallWebConfig
from gated.config.problems import CrossCheckError, Problem, timezone_problem

_SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"

if TYPE_CHECKING:
    DeviceConfig = DeviceSettings
else:  # the union of every registered driver's settings, told apart by their ``type`` (and a
    # type with profiles by its choosing keys, ``drivers.settings.Variants``)
    DeviceConfig = Annotated[Union[device_union_members()], Field(discriminator="type")]  # noqa: UP007


class SiteConfig(Strict):
    id: str = Field(pattern=_SLUG, description="MQTT topic segment; lower-case slug")
    name: str = ""
    hall_name: str = "便民服务中心"
    timezone: str = "Asia/Shanghai"
    key_file: Path = Field(
        default=Path("/etc/gated/site.key"),
        description="secret for pseudonyms; kept out of this file on purpose",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        problem = timezone_problem(v)
        if problem:
            raise ValueError(problem)
        return v


class BoothConfig(Strict):
    id: str = Field(pattern=_SLUG)
    name: str = ""


class OutboxConfig(Strict):
    max_rows: int = Field(default=200_000, ge=100)
    max_bytes: int = Field(default=128 * 1024 * 1024, ge=64 * 1024)
    reserved_fraction: float = Field(
        default=0.1, ge=0.0, le=0.5, description="share kept free for alarms and assist requests"
    )
    retention_days: float = Field(default=30.0, gt=0)
    max_batch: int = Field(default=512, ge=1, le=10_000)
    gate_inputs: bool = Field(
        default=True,
        description="store and publish every change of a gate's inputs (limit switches, beam, "
        "fire input) as a gate.inputs event: about four per visitor. false keeps the gates' "
        "alarms, passages and commands and saves about a fifth of the daemon's CPU per visitor")


class SupervisionConfig(Strict):
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)


class TlsConfig(Strict):
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


class MqttConfig(Strict):
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
    sync_chunk_timeout_s: float = Field(
        default=300.0, gt=0, le=3600,
        description="a chunked list snapshot must be complete this long after its first chunk")
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


class GatedConfig(Strict):
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
    appointments: AppointmentsConfig = AppointmentsConfig()
    rating: RatingConfig = RatingConfig()
    hall: HallWebConfig = HallWebConfig()
    devices: dict[str, DeviceConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cross_checks(self) -> GatedConfig:
        problems = cross_problems(self)
        if problems:
            raise CrossCheckError(problems)
        return self

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"gated-{self.site.id}-{self.booth.id}"


def cross_problems(cfg: GatedConfig) -> list[Problem]:
    """References between sections: device zones, services, counters, the one public zone,
    days that are both a holiday and a working day."""
    out: list[Problem] = []
    for name, dev in cfg.devices.items():
        if isinstance(dev, ZonedSettings) and dev.zone not in cfg.zones:
            out.append((f"devices.{name}.zone", f"unknown zone {dev.zone!r}; known zones: "
                        f"{', '.join(sorted(cfg.zones)) or 'none'}"))
    if cfg.queue.default_service not in cfg.services:
        out.append(("queue.default_service",
                    f"{cfg.queue.default_service!r} is not a [services] entry"))
    for counter, services in cfg.queue.counters.items():
        for s in services:
            if s not in cfg.services:
                out.append((f"queue.counters.{counter}", f"unknown service {s!r}; known "
                            f"services: {', '.join(sorted(cfg.services))}"))
    prefixes: dict[str, str] = {}
    for sid, svc in cfg.services.items():
        if svc.prefix in prefixes:
            out.append((f"services.{sid}.prefix",
                        f"{svc.prefix!r} already used by {prefixes[svc.prefix]}"))
        prefixes[svc.prefix] = sid
    public = [z for z, zone in cfg.zones.items() if zone.kind is ZoneKind.PUBLIC]
    if not public:
        out.append(("zones", "no zone has kind = \"public\": the hall would admit nobody"))
    elif len(public) > 1:
        out.append((f"zones.{public[1]}.kind", f"a second public zone; only one is the hall "
                    f"({public[0]!r})"))
    a = cfg.appointments
    cameras = [n for n, d in cfg.devices.items() if d.reads_appointment_codes and d.enabled]
    if cameras and a.require_signed and not (a.public_key_file or a.hmac_key_file):
        out.append(("appointments", f"devices.{cameras[0]} reads appointment codes, which must "
                    "be signed: set public_key_file or hmac_key_file (or require_signed = "
                    "false)"))
    both = sorted(set(cfg.schedule.holidays) & set(cfg.schedule.workdays))
    if both:
        out.append(("schedule.workdays", f"{both[0]} is a holiday and a working day"))
    return out
