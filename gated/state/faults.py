"""Which state-thread jobs keep failing: the daemon must never sit "running but serving no one".

A job that raises is rolled back alone and the rest of its batch commits (``gated.state.loop``).
One failure is a bug report; the same job failing again and again (every tap, every tick) means
the booth does not serve, and that must show: after ``after`` failures in a row of one kind of
job (its qualified name) it is *faulted*: an alarm event, a ``faulted`` state in the status
(local and MQTT) and a non-zero exit of ``gated status``. One success of that job clears it
again, with an event saying so.

Used on the state thread only; ``problems()`` is read from other threads (a copy of a dict).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gated.state.events import utc_now_iso

FAULT_AFTER = 3


@dataclass
class _Failing:
    count: int
    error: str
    since: str
    faulted: bool = False


def job_name(fn: Callable[..., Any]) -> str:
    """What kind of job ``fn`` is: its qualified name (a lambda's tells where it was made)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return str(getattr(fn, "__qualname__", type(fn).__qualname__))


class FaultWatch:
    def __init__(self, after: int = FAULT_AFTER) -> None:
        self.after = after
        self._failing: dict[str, _Failing] = {}

    def failed(self, name: str, error: BaseException) -> dict[str, Any] | None:
        """Count a failure; the payload of an alarm when ``name`` has just become faulted."""
        text = f"{type(error).__name__}: {error}"[:300]
        entry = self._failing.get(name)
        if entry is None:
            entry = self._failing[name] = _Failing(0, text, utc_now_iso())
        entry.count += 1
        entry.error = text
        if entry.faulted or entry.count < self.after:
            return None
        entry.faulted = True
        return {"kind": "state_job_failing", "job": name, "failures": entry.count,
                "error": text, "since": entry.since}

    def succeeded(self, names: set[str]) -> list[dict[str, Any]]:
        """Clear the jobs that ran; an event payload for each that had been faulted."""
        if not self._failing:
            return []
        out = []
        for name in names & self._failing.keys():
            entry = self._failing.pop(name)
            if entry.faulted:
                out.append({"kind": "state_job_recovered", "job": name,
                            "failures": entry.count, "since": entry.since})
        return out

    def first_failure(self, name: str) -> bool:
        """True for the first failure in a row (the one worth a traceback in the log)."""
        entry = self._failing.get(name)
        return entry is None or entry.count <= 1

    def problems(self) -> list[dict[str, Any]]:
        return [{"job": n, "failures": e.count, "error": e.error, "since": e.since}
                for n, e in dict(self._failing).items() if e.faulted]
