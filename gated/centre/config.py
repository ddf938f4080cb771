"""The centre's own TOML file (``/etc/gated/centre.toml``): where PostgreSQL and the county
broker are, how the ingest batches, and the county's case lists with their time limits.

It is separate from a booth's ``gated.toml`` on purpose: the centre runs on the county's
machines, never on a booth, and shares nothing with a booth's config but the topic layout and
the command key. Every model is strict: an unknown key is an error that names it.
"""

from __future__ import annotations

import enum
import tomllib
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_CENTRE_CONFIG = Path("/etc/gated/centre.toml")


class CentreConfigError(Exception):
    """A centre config that cannot be used; ``str()`` names the file and every key at fault."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseList(enum.StrEnum):
    """The county practice's three lists every escalation and callback case is sorted into."""

    PRIORITY = "priority"  # 优先办: handle first
    ONGOING = "ongoing"  # 持续办: needs continued work
    EXPLAIN = "explain"  # 解释办: cannot be done as asked; explain and close


class ListRule(_Strict):
    """A list's time limit, in working days from the case's opening to its answer."""

    label: str
    limit_working_days: int = Field(ge=1, le=365)


def _default_lists() -> dict[CaseList, ListRule]:
    return {CaseList.PRIORITY: ListRule(label="优先办", limit_working_days=3),
            CaseList.ONGOING: ListRule(label="持续办", limit_working_days=15),
            CaseList.EXPLAIN: ListRule(label="解释办", limit_working_days=5)}


class DefaultLists(_Strict):
    """The list a case is in until a person sorts it (``gated centre sort``)."""

    escalation: CaseList = CaseList.PRIORITY  # 办不成事找局长
    callback: CaseList = CaseList.ONGOING  # a 不满意 rating
    very_dissatisfied: CaseList = CaseList.PRIORITY  # a 非常不满意 rating


class CalendarConfig(_Strict):
    """Working days: Monday to Friday, less ``holidays``, plus ``workdays`` (the weekend days
    worked in exchange for a long holiday, 调休)."""

    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)


class CentreMqtt(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    group: str = Field(default="centre-ingest", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                       description="shared-subscription group: every worker of one ingest")
    session_expiry_s: int = Field(default=86400, ge=0,
                                  description="a killed worker's unacknowledged messages wait "
                                              "this long for it to come back")
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    command_key_file: Path | None = Field(default=None,
                                          description="the booths' command key, for the desk")


class IngestConfig(_Strict):
    batch_max: int = Field(default=500, ge=1, le=20000)
    batch_wait_ms: int = Field(default=50, ge=0, le=10000,
                               description="how long a partial batch waits for more")
    receive_maximum: int = Field(default=2000, ge=1, le=65535,
                                 description="MQTT 5 Receive Maximum: unacknowledged messages "
                                             "the broker may send us")
    max_message_bytes: int = Field(default=256 * 1024, ge=1024)
    sequence_interval_s: float = Field(default=0.5, gt=0, le=60)
    sites: list[str] = Field(default_factory=list,
                             description="known sites; empty: any. Others are quarantined")


class CentreConfig(_Strict):
    dsn: str = Field(default="", description="libpq connection string; or dsn_file")
    dsn_file: Path | None = None
    timezone: str = "Asia/Shanghai"
    mqtt: CentreMqtt = Field(default_factory=CentreMqtt)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    lists: dict[CaseList, ListRule] = Field(default_factory=_default_lists)
    default_lists: DefaultLists = Field(default_factory=DefaultLists)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r} (an IANA name: Asia/Shanghai)") from None
        return v

    @field_validator("lists")
    @classmethod
    def _every_list(cls, v: dict[CaseList, ListRule]) -> dict[CaseList, ListRule]:
        return {**_default_lists(), **v}

    def conninfo(self) -> str:
        """The DSN, read from ``dsn_file`` when set (it holds a password)."""
        if self.dsn_file is not None:
            try:
                return self.dsn_file.read_text(encoding="utf-8").strip()
            except OSError as e:
                raise CentreConfigError(f"centre: dsn_file {self.dsn_file}: {e.strerror}") from None
        if not self.dsn:
            raise CentreConfigError("centre: set dsn or dsn_file (a libpq connection string)")
        return self.dsn


def load_centre_config(path: Path) -> CentreConfig:
    """Read and validate; every problem is a ``CentreConfigError`` naming the key."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise CentreConfigError(f"{path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise CentreConfigError(f"{path}: not TOML: {e}") from None
    try:
        return CentreConfig.model_validate(raw.get("centre", raw))
    except ValidationError as e:
        lines = [f"{path}: " + ".".join(str(p) for p in err["loc"]) + f": {err['msg']}"
                 for err in e.errors()]
        raise CentreConfigError("\n".join(lines)) from None
