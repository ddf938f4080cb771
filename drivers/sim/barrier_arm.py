"""A barrier arm behind a dry-contact controller, as the relay board's inputs see it.

Pure model driven by explicit times: a button press (the rising edge of the OPEN, CLOSE or
STOP relay) starts the arm travelling at constant speed; the limit switches follow its
position. Faults: ``jammed`` (presses do nothing, the arm never moves) and ``force_open``
(the arm rises with no press, as when someone lifts it or the controller is opened by hand).
Like most controllers with host control this model has no timer of its own and no built-in
loop reversal, so every close and every safety decision in a test is the driver's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Button(enum.StrEnum):
    OPEN = "open"
    CLOSE = "close"
    STOP = "stop"


@dataclass(frozen=True)
class Limits:
    open_limit: bool
    closed_limit: bool


class BarrierArm:
    """Position 0.0 is closed (down), 1.0 open (up)."""

    def __init__(self, travel_s: float, *, position: float = 0.0) -> None:
        if travel_s <= 0:
            raise ValueError("travel_s must be positive")
        self.travel_s = travel_s
        self.jammed = False
        self._pos0 = min(1.0, max(0.0, position))
        self._t0 = 0.0
        self._direction = 0  # +1 rising, -1 falling, 0 still
        self.presses: list[tuple[float, Button]] = []

    def position(self, now: float) -> float:
        moved = self._direction * max(0.0, now - self._t0) / self.travel_s
        return min(1.0, max(0.0, self._pos0 + moved))

    def _move(self, now: float, direction: int) -> None:
        self._pos0 = self.position(now)
        self._t0 = now
        self._direction = direction

    def press(self, button: Button, now: float) -> None:
        self.presses.append((now, button))
        if self.jammed:
            return
        self._move(now, {Button.OPEN: 1, Button.CLOSE: -1, Button.STOP: 0}[button])

    def force_open(self, now: float) -> None:
        """The arm rises although nobody pressed OPEN (works even when jammed)."""
        self._move(now, 1)

    def limits(self, now: float) -> Limits:
        pos = self.position(now)
        return Limits(open_limit=pos >= 1.0, closed_limit=pos <= 0.0)
