"""Opening hours: is the hall open at a given local time?

Holidays close the hall whatever the weekday; make-up working days (调休) open it with
``workday_hours`` even on a weekend. Times are local wall-clock times in ``site.timezone``; they
decide opening hours only and never order events (the sequence number does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from gated.config import WEEKDAYS, ScheduleConfig, parse_ranges


@dataclass(frozen=True)
class Schedule:
    """Pre-parsed opening hours; build once per config with ``Schedule.from_config``."""

    by_weekday: tuple[tuple[tuple[time, time], ...], ...]
    holidays: frozenset[date]
    workdays: frozenset[date]
    workday_hours: tuple[tuple[time, time], ...]
    staff_after_hours: bool

    @classmethod
    def from_config(cls, cfg: ScheduleConfig) -> Schedule:
        hit = _CACHE.get(id(cfg))
        if hit is not None and hit[0] is cfg:
            return hit[1]
        by_day = tuple(tuple(parse_ranges(cfg.hours.get(d, ""))) for d in WEEKDAYS)
        sched = cls(by_weekday=by_day, holidays=frozenset(cfg.holidays),
                    workdays=frozenset(cfg.workdays),
                    workday_hours=tuple(parse_ranges(cfg.workday_hours)),
                    staff_after_hours=cfg.staff_after_hours)
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[id(cfg)] = (cfg, sched)
        return sched

    def ranges_on(self, day: date) -> tuple[tuple[time, time], ...]:
        if day in self.holidays:
            return ()
        if day in self.workdays:
            return self.workday_hours
        return self.by_weekday[day.weekday()]

    def is_open(self, local: datetime) -> bool:
        t = local.time()
        return any(a <= t < b for a, b in self.ranges_on(local.date()))

    def closes_at(self, local: datetime) -> time | None:
        """End of the opening range ``local`` is in, or None when closed."""
        t = local.time()
        for a, b in self.ranges_on(local.date()):
            if a <= t < b:
                return b
        return None


_CACHE: dict[int, tuple[ScheduleConfig, Schedule]] = {}


@lru_cache(maxsize=4)
def zone_info(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_now(tz: str, now: datetime | None = None) -> datetime:
    """``now`` (aware, any zone; default the system clock) as local time of the site."""
    return (now or datetime.now(UTC)).astimezone(zone_info(tz))
