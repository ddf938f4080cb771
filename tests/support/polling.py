"""Waiting in tests: until a predicate holds, or until a driver reports a matching observation.

Tests never sleep a fixed time and hope; they poll with a generous limit and fail with what
they saw. The limits are far above the real times (those are measured in ``bench/``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from drivers.base import Observation

T = TypeVar("T")


class Pollable(Protocol):
    def poll(self, timeout: float) -> Iterable[Observation]: ...


def wait_for(pred: Callable[[], T], timeout: float = 10.0, what: str = "condition",
             interval: float = 0.02) -> T:
    """The first truthy value of ``pred()``; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def holds_within(pred: Callable[[], Any], timeout: float, interval: float = 0.02) -> bool:
    """Whether ``pred()`` became true within ``timeout`` (for ``assert holds_within(...)``)."""
    try:
        wait_for(pred, timeout, interval=interval)
    except AssertionError:
        return False
    return True


def pump(dev: Pollable, seconds: float, step: float = 0.05) -> list[Observation]:
    """Everything ``dev`` reports during ``seconds``."""
    out: list[Observation] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out += dev.poll(step)
    return out


def pump_until(dev: Pollable, pred: Callable[[Observation], bool], limit: float,
               step: float = 0.05) -> list[Observation]:
    """Everything ``dev`` reported up to the first observation matching ``pred``."""
    out: list[Observation] = []
    end = time.monotonic() + limit
    while time.monotonic() < end:
        new = list(dev.poll(step))
        out += new
        if any(pred(o) for o in new):
            return out
    raise AssertionError(f"nothing matched within {limit} s; saw {out}")
