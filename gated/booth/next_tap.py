"""What waits for the next tap: an assist button press, the guard's priority flag, a guest
registration. Each is armed until a deadline and taken by the next presentation.

Transient on purpose (a press is worth a minute, not a restart), so kept in memory on the state
thread; ``take`` registers an ``on_rollback`` that puts them back when the batch is re-run.
``armed()`` is read from other threads (status): each flag is one attribute holding a frozen
value, replaced whole, so a reader sees one flag or the other, never half of one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Generic, TypeVar

from gated.policy import AssistKind, PriorityReason
from gated.state import Batch

T = TypeVar("T")


@dataclass(frozen=True)
class Armed(Generic[T]):
    value: T
    until: float  # monotonic deadline

    def live(self, now: float) -> bool:
        return self.until > now


@dataclass(frozen=True)
class GuestArm:
    zone: str
    minutes: float


class NextTap:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.assist: Armed[AssistKind] | None = None
        self.guard: Armed[PriorityReason] | None = None
        self.guest: Armed[GuestArm] | None = None

    def press_assist(self, kind: AssistKind) -> None:
        """Assist button: the next tap (or manual ticket) within the window gets priority."""
        self.assist = Armed(kind, time.monotonic() + self.window_s)

    def flag_priority(self, reason: PriorityReason, window_s: float | None = None) -> None:
        self.guard = Armed(reason, time.monotonic() + (window_s or self.window_s))

    def arm_guest(self, zone: str, minutes: float) -> None:
        self.guest = Armed(GuestArm(zone, minutes), time.monotonic() + self.window_s)

    def take(self, b: Batch) -> tuple[AssistKind | None, PriorityReason | None]:
        """The assist press and guard flag still armed, disarmed for whoever comes next."""
        now = time.monotonic()
        saved = (self.assist, self.guard)
        assist = self.assist.value if self.assist and self.assist.live(now) else None
        guard = self.guard.value if self.guard and self.guard.live(now) else None
        self.assist = self.guard = None

        def restore() -> None:
            self.assist, self.guard = saved
        b.on_rollback(restore)
        return assist, guard

    def take_guest(self, b: Batch) -> GuestArm | None:
        """The guest registration if armed and still in its window (disarmed either way)."""
        saved, self.guest = self.guest, None
        if saved is None:
            return None

        def restore() -> None:
            self.guest = saved
        b.on_rollback(restore)
        return saved.value if saved.live(time.monotonic()) else None

    def armed(self) -> dict[str, float]:
        """Seconds left for each armed flag, so the guard sees a press was taken. Never the
        assist kind: it may be sensitive."""
        now = time.monotonic()
        return {name: round(flag.until - now, 1) for name, flag in
                (("assist", self.assist), ("priority_flag", self.guard), ("guest", self.guest))
                if flag is not None and flag.live(now)}
