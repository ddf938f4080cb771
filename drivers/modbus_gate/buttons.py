"""Visitor push-buttons read through a device's discrete inputs (the assist and escalation
buttons on the relay board of a gate).

A button is sampled by the device's input poll, so what a caller gets is one ``ButtonPressed``
per press:
- a press counts on the edge from released to pressed, so a button held down counts once;
- a press within ``rearm_s`` of the last counted one is contact bounce or an impatient second
  push and does not count (an escalation button pressed three times is one escalation);
- a button already down at the first sample after ``reset()`` (the device was just opened) does
  not count: a stuck or shorted button must not raise an escalation on every reconnect.
"""

from __future__ import annotations

from collections.abc import Mapping

from drivers.base import ButtonKind, ButtonPressed

REARM_S = 1.0


class ButtonEdges:
    def __init__(self, rearm_s: float = REARM_S) -> None:
        self.rearm_s = rearm_s
        self._down: dict[ButtonKind, bool] = {}
        self._counted_at: dict[ButtonKind, float] = {}

    def reset(self) -> None:
        """Forget every button: the next sample is a first one (call on open)."""
        self._down.clear()
        self._counted_at.clear()

    def update(self, down: Mapping[ButtonKind, bool], now: float) -> list[ButtonPressed]:
        """One sample of every wired button at monotonic time ``now``: the presses it holds."""
        out = []
        for button, pressed in down.items():
            was = self._down.get(button)
            self._down[button] = pressed
            if not pressed or was is not False:
                continue
            last = self._counted_at.get(button)
            if last is None or now - last >= self.rearm_s:
                self._counted_at[button] = now
                out.append(ButtonPressed(button))
        return out
