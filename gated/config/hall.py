"""Policy, queue and ticket sections of the config: what the hall offers and when.

Times are local wall-clock times in ``site.timezone``; the policy never compares them with the
sequence numbers that order events.
"""

from __future__ import annotations

import enum
import re
from datetime import date, time
from pathlib import Path

from pydantic import Field, field_validator

from drivers.settings import Strict


class ZoneKind(enum.StrEnum):
    PUBLIC = "public"  # the service hall: everyone, a tap only prints a ticket
    OFFICE = "office"  # staff badges and visitors with an appointment


class ZoneMode(enum.StrEnum):
    NORMAL = "normal"
    FREE_PASSAGE = "free_passage"  # gate held open, taps only print tickets
    LOCKED = "locked"


RATING_URL_FIELDS = frozenset({"ticket_id", "site", "booth"})
_RANGE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_ranges(spec: str) -> list[tuple[time, time]]:
    """``"08:30-12:00,14:00-17:30"`` -> [(08:30, 12:00), (14:00, 17:30)]; "" = closed."""
    out: list[tuple[time, time]] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if not _RANGE.match(part):
            raise ValueError(f"{part!r} is not HH:MM-HH:MM")
        a, b = part.split("-")
        start = time.fromisoformat(a)
        end = time(23, 59, 59) if b == "24:00" else time.fromisoformat(b)
        if end <= start:
            raise ValueError(f"{part!r} ends before it starts")
        out.append((start, end))
    return out


class ZoneConfig(Strict):
    name: str
    kind: ZoneKind
    mode: ZoneMode = ZoneMode.NORMAL
    fail_open: bool = Field(
        default=True, description="open and hold on fire alarm or controller fault"
    )


class ScheduleConfig(Strict):
    """Opening hours per weekday; holidays close the hall, make-up days open it as a Monday."""

    hours: dict[str, str] = Field(
        default_factory=lambda: {d: "08:30-12:00,14:00-17:30" for d in WEEKDAYS[:5]}
    )
    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list, description="make-up working days")
    workday_hours: str = "08:30-12:00,14:00-17:30"
    staff_after_hours: bool = True

    @field_validator("hours")
    @classmethod
    def _check_hours(cls, v: dict[str, str]) -> dict[str, str]:
        for day, spec in v.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use one of {', '.join(WEEKDAYS)}")
            parse_ranges(spec)
        return v

    @field_validator("workday_hours")
    @classmethod
    def _check_workday_hours(cls, v: str) -> str:
        parse_ranges(v)
        return v


class ServiceConfig(Strict):
    name: str
    prefix: str = Field(pattern=r"^[A-Z]{1,2}$")
    width: int = Field(default=3, ge=2, le=5)
    start: int = Field(default=1, ge=0)
    default_minutes: float = Field(default=8.0, gt=0, description="service time before stats")
    one_waiting_ticket: bool = Field(
        default=True, description="a visitor who taps again while their ticket for this "
        "service still waits gets a reminder slip of it, not a second number")


class AppointmentsConfig(Strict):
    """Appointment QR codes: signed by the appointment system, checked in once."""

    require_signed: bool = Field(
        default=True, description="false accepts bare references looked up in the "
        "appointments list: anyone who guesses one gets in")
    public_key_file: Path | None = Field(
        default=None, description="Ed25519 public key of the appointment system (PEM, or "
        "the 32 raw bytes as 64 hex characters)")
    hmac_key_file: Path | None = Field(
        default=None, description="or a key shared with it: HMAC-SHA256 (a secret: 0640)")
    early_min: float = Field(default=30.0, ge=0, le=240,
                             description="check-in accepted this long before the window")


class QueueConfig(Strict):
    default_service: str = "general"
    max_priority_run: int = Field(default=3, ge=1, description="priority tickets before a regular")
    max_wait_min: float = Field(default=60.0, gt=0, description="ageing bound for regular tickets")
    recall_limit: int = Field(default=2, ge=0)
    booth_prefix: str = Field(
        default="", pattern=r"^[A-Z0-9]{0,2}$",
        description="put before every number so several booths of one hall never clash",
    )
    counters: dict[str, list[str]] = Field(
        default_factory=dict, description="counter -> services it calls; unlisted = all"
    )


class PriorityConfig(Strict):
    elderly_age: int = Field(default=60, ge=50, le=100)
    assist_escalate_s: float = Field(default=120.0, gt=0)
    assist_window_s: float = Field(
        default=60.0, gt=0, description="an assist button press applies to the next tap within"
    )
    escalation_reraise_s: float = Field(default=600.0, gt=0)
    denied_attempts: int = Field(default=3, ge=2, description="denials of one person -> anomaly")
    denied_window_s: float = Field(default=300.0, gt=0)


class RatingLevel(enum.StrEnum):
    """The five levels of the 好差评 scale, best first; the value is the wire and config name,
    ``label`` the words the citizen sees."""

    VERY_SATISFIED = "very_satisfied"
    SATISFIED = "satisfied"
    BASIC = "basic"
    DISSATISFIED = "dissatisfied"
    VERY_DISSATISFIED = "very_dissatisfied"

    @property
    def label(self) -> str:
        return _RATING_LABELS[self]

    @property
    def bad(self) -> bool:
        """不满意 and 非常不满意 open a callback case (回访)."""
        return self in (RatingLevel.DISSATISFIED, RatingLevel.VERY_DISSATISFIED)


_RATING_LABELS = {RatingLevel.VERY_SATISFIED: "非常满意", RatingLevel.SATISFIED: "满意",
                  RatingLevel.BASIC: "基本满意", RatingLevel.DISSATISFIED: "不满意",
                  RatingLevel.VERY_DISSATISFIED: "非常不满意"}


class RatingConfig(Strict):
    """好差评: a citizen's rating of a served ticket, from the counter's pad or the ticket QR."""

    reasons: list[str] = Field(
        default_factory=lambda: ["等候时间长", "服务态度", "一次没办成", "流程复杂", "环境设施",
                                 "其他"],
        description="reason tags a citizen may add; the rating command accepts only these")
    callback_reraise_s: float = Field(
        default=4 * 3600.0, gt=0, description="a callback not yet called back is raised again")
    max_age_h: float = Field(default=24.0, gt=0,
                             description="a ticket served longer ago is not rated")
    pad_timeout_s: float = Field(default=60.0, ge=5, le=600,
                                 description="the pad shows the scale this long after 'served'")

    @field_validator("reasons")
    @classmethod
    def _check_reasons(cls, v: list[str]) -> list[str]:
        for r in v:
            if not 0 < len(r) <= 16:
                raise ValueError(f"reason tag {r!r} must have 1-16 characters")
        if len(set(v)) != len(v):
            raise ValueError("reason tags must be distinct")
        return v


class TicketConfig(Strict):
    rating_url: str = Field(
        default="https://pj.example.gov.cn/r?t={ticket_id}",
        description="{ticket_id}, {site} and {booth} are replaced",
    )

    @field_validator("rating_url")
    @classmethod
    def _template(cls, v: str) -> str:
        if v and not re.match(r"^https?://[^/\s{}]+", v):
            raise ValueError("must be an http:// or https:// URL (phones open it from the QR)")
        unknown = sorted(set(re.findall(r"{([^{}]*)}", v)) - RATING_URL_FIELDS)
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}}; known: "
                             f"{', '.join('{' + f + '}' for f in sorted(RATING_URL_FIELDS))}")
        return v
    hotline_label: str = "办不成事找局长"
    hotline_number: str = "12345"
    first_responder: str = "首问负责台"
    footer: str = ""
    print_masked_name: bool = False
    rating_label: str = Field(default="扫码评价本次服务", description="printed under the QR code")
    priority_mark: str = Field(
        default="优先", description="mark of a priority ticket that carries no label of its own"
    )
