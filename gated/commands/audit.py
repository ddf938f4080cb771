"""The audit trail of refused commands, bounded: one ``security`` event per burst, not per try.

Every refusal from outside (unsigned, forged, replayed, malformed, unknown...) is worth an
audit line, but an attacker with a broker password can send thousands a second, and an event
per refusal would spend the outbox's bound on their noise (evicting the booth's own events).
So refusals are counted per (reason, source): the first of a quiet spell is reported at once
(a single forged command reaches the centre without delay), the rest of its window are summed
into one event when the window ends. The counts of a key's events add up to its refusals.

Thread-safe: ``note`` is called from whichever thread dispatched the command; ``due`` from the
state thread's ticker.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gated.state import utc_now_iso

WINDOW_S = 10.0
SAMPLE = 5  # command names named per aggregated event


@dataclass
class _Window:
    started: float
    first_ts: str
    count: int = 0  # refusals after the one reported at once
    last_ts: str = ""
    commands: Counter[str] = field(default_factory=Counter)


class RefusalAudit:
    def __init__(self, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], _Window] = {}

    def note(self, reason: str, source: str, command: str) -> dict[str, Any] | None:
        """Count one refusal; the payload of an event to emit now, or None (summed later)."""
        now, ts, command = self._clock(), utc_now_iso(), command[:64]
        with self._lock:
            window = self._open.get((reason, source))
            if window is not None and now - window.started < self.window_s:
                window.count += 1
                window.last_ts = ts
                window.commands[command] += 1
                return None
            self._open[(reason, source)] = _Window(now, ts)
        return {"command": command, "source": source, "reason": reason, "count": 1}

    def due(self) -> list[dict[str, Any]]:
        """Payloads for the windows that have ended with refusals still to report."""
        now = self._clock()
        out = []
        with self._lock:
            for (reason, source), w in list(self._open.items()):
                if now - w.started < self.window_s:
                    continue
                del self._open[(reason, source)]
                if w.count:
                    out.append({"source": source, "reason": reason, "count": w.count,
                                "commands": dict(w.commands.most_common(SAMPLE)),
                                "window_s": self.window_s, "first_ts": w.first_ts,
                                "last_ts": w.last_ts})
        return out
