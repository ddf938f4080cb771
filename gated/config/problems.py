"""Problems found while validating a config that a field's own type cannot express: a value
this machine does not know (a time zone), and several problems from one validator."""

from __future__ import annotations

import difflib
import zoneinfo
from functools import lru_cache

Problem = tuple[str, str]  # (dotted path, message)


class CrossCheckError(ValueError):
    """Several problems found by one model validator, each with its own path."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))
        self.problems = problems


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_problem(name: str) -> str | None:
    """None for a time zone this machine knows, else why not with a did-you-mean."""
    try:
        zoneinfo.ZoneInfo(name)
        return None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    match = difflib.get_close_matches(name, sorted(_zones()), n=1, cutoff=0.6)
    hint = f"; did you mean {match[0]!r}?" if match else " (see timedatectl list-timezones)"
    return f"unknown time zone {name!r}{hint}"
