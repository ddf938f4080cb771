"""The ``[hall]`` section: the hall's own screens (calling display, counter terminals, rating
pads, guard console), served by ``gated hall`` in a process of its own; and that process's view
of the config file (``load_hall_view``).

The web process must stay small (its RSS target is 40 MB on a Pi): it reads the same TOML file
as the daemon but validates only the sections it shows (site names, services, counters, ticket
texts, ratings, ``[hall]``) and ignores the rest, so it never loads the device models. The
daemon's ``GatedConfig`` includes ``[hall]`` too, so ``gated check-config`` checks it strictly.

Sign-in: each ``[hall.users.<id>]`` is a clerk, a guard or an admin (or one shared entry per
counter), with ``secret`` a salted scrypt hash made by ``gated hall passwd`` (never the PIN).
"""

from __future__ import annotations

import enum
import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from drivers.settings import Strict
from gated.config.common import DEFAULT_CONFIG_PATH, ConfigError, ConfigProblem, LogConfig
from gated.config.hall import WEEKDAYS, QueueConfig, RatingConfig, ServiceConfig, TicketConfig

_LISTEN = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")
SECRET_SCHEME = "scrypt"


class HallRole(enum.StrEnum):
    """Who may do what on the hall's pages; each is checked on the server."""

    DISPLAY = "display"  # no sign-in: the calling display, read-only
    COUNTER = "counter"  # a window clerk: calls, serves, transfers; signs in the rating pad
    GUARD = "guard"  # the booth guard: alarms, assistance, manual tickets, notice, gates
    ADMIN = "admin"  # local IT or the hall's head: everything, plus callback cases


class HallUser(Strict):
    role: HallRole
    secret: str = Field(description="scrypt$N$r$p$salt$hash from `gated hall passwd`")
    name: str = Field(default="", max_length=32, description="shown on the console, never "
                                                            "on the display")
    counters: list[str] = Field(default_factory=list,
                                description="counters a clerk may sign in to; [] = any")

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, v: str) -> str:
        parts = v.split("$")
        if len(parts) != 6 or parts[0] != SECRET_SCHEME or not all(p.isdigit()
                                                                  for p in parts[1:4]):
            raise ValueError("secret must be a hash from `gated hall passwd` "
                             "(scrypt$N$r$p$salt$hash), never the PIN itself")
        return v


class VoiceConfig(Strict):
    """Mandarin announcements, rendered on the booth (nothing is downloaded at run time)."""

    engine: list[str] = Field(
        default_factory=lambda: ["espeak-ng", "-v", "cmn", "-s", "130", "-w", "{out}",
                                 "{text}"],
        description="command that writes a WAV of {text} to {out}; e.g. a local Piper model")
    template: str = Field(default="请 {number} 号 到 {counter} 办理", max_length=80)
    repeat: int = Field(default=2, ge=1, le=3, description="each call is spoken this often")
    on_display: bool = Field(default=True, description="the display page plays the calls")
    on_box: bool = Field(default=False, description="the booth's own audio output plays them")
    player: list[str] = Field(default_factory=lambda: ["aplay", "-q", "{file}"])
    cache_dir: Path | None = Field(default=None, description="default <state_dir>/voice")
    render_timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("engine", "player")
    @classmethod
    def _check_command(cls, v: list[str]) -> list[str]:
        if not v or not v[0]:
            raise ValueError("needs a program")
        return v


class HallWebConfig(Strict):
    enabled: bool = Field(default=True, description="gated simulate starts it; systemd unit")
    listen: str = Field(default="127.0.0.1:8080", description="host:port on the hall's LAN")
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    title: str = Field(default="", description="default site.hall_name")
    desk_label: str = Field(default="", description="default ticket.first_responder")
    duty: dict[str, str] = Field(default_factory=dict,
                                 description="weekday -> today's duty cadre (干部轮流值班)")
    reception: dict[str, str] = Field(default_factory=dict,
                                      description="weekday -> leaders' reception hours")
    counter_names: dict[str, str] = Field(default_factory=dict,
                                          description='counter -> name; default "<id>号窗口"')
    recent_calls: int = Field(default=6, ge=1, le=20)
    blink_s: float = Field(default=5.0, ge=0, le=60)
    users: dict[str, HallUser] = Field(default_factory=dict)
    session_idle_s: float = Field(default=1800.0, ge=60)
    session_max_s: float = Field(default=12 * 3600.0, ge=300)
    signin_max_failures: int = Field(default=5, ge=1, le=100)
    signin_lockout_s: float = Field(default=300.0, ge=10)
    max_streams: int = Field(default=64, ge=1, le=1000, description="live pages at once")
    voice: VoiceConfig = VoiceConfig()

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, v: str) -> str:
        m = _LISTEN.match(v)
        if not m or not 0 < int(m.group(2)) < 65536:
            raise ValueError(f"{v!r} is not host:port")
        return v

    @field_validator("duty", "reception")
    @classmethod
    def _check_days(cls, v: dict[str, str]) -> dict[str, str]:
        for day in v:
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use one of {', '.join(WEEKDAYS)}")
        return v

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    def counter_name(self, counter: str) -> str:
        return self.counter_names.get(counter) or f"{counter}号窗口"


# ------------------------------------------------------------------ the web process's view
class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class HallSiteView(_Loose):
    id: str = ""
    name: str = ""
    hall_name: str = "便民服务中心"  # as SiteConfig
    timezone: str = "Asia/Shanghai"


class HallBoothView(_Loose):
    id: str = ""
    name: str = ""


def _default_services() -> dict[str, ServiceConfig]:
    return {"general": ServiceConfig(name="综合窗口", prefix="A")}  # as GatedConfig


class HallView(_Loose):
    """What ``gated hall`` reads of the booth's config file; the daemon checks the rest."""

    state_dir: Path = Path("/var/lib/gated")
    site: HallSiteView = HallSiteView()
    booth: HallBoothView = HallBoothView()
    log: LogConfig = LogConfig()
    services: dict[str, ServiceConfig] = Field(default_factory=_default_services)
    queue: QueueConfig = QueueConfig()
    ticket: TicketConfig = TicketConfig()
    rating: RatingConfig = RatingConfig()
    hall: HallWebConfig = HallWebConfig()

    @property
    def title(self) -> str:
        return self.hall.title or self.site.hall_name

    def counters(self) -> list[str]:
        """Counters the hall knows of: configured ones, then named ones."""
        seen = list(self.queue.counters)
        seen += [c for c in self.hall.counter_names if c not in seen]
        return seen


def load_hall_view(path: str | Path = DEFAULT_CONFIG_PATH) -> HallView:
    """The hall's sections of the config file, or ``ConfigError`` with every problem."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(p), [ConfigProblem("", "file not found")]) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(str(p), [ConfigProblem("", f"cannot read: {e}")]) from None
    try:
        return HallView.model_validate(data)
    except ValidationError as e:
        raise ConfigError(str(p), [ConfigProblem(".".join(str(x) for x in err["loc"]),
                                                 err["msg"].removeprefix("Value error, "))
                                   for err in e.errors()]) from None
