"""A real store, outbox and state thread with no devices, for tests of what runs on the state
thread (commands, lists, cases, the uplink). Nothing is mocked: the same ``Store``, ``Outbox``
and ``StateLoop`` the daemon uses, on a temporary directory."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Self

from gated.config import OutboxConfig
from gated.state import outbox
from gated.state.loop import Batch, StateLoop
from gated.state.outbox import Outbox
from gated.state.store import Store


class StateRig:
    def __init__(self, state_dir: Path, hooks: Iterable[Any] = (), *,
                 outbox_cfg: OutboxConfig | None = None, site: str = "s",
                 booth: str = "b") -> None:
        self.store = Store(state_dir, [outbox.ensure_schema, *hooks])
        self.store.open()
        self.outbox = Outbox(self.store, outbox_cfg or OutboxConfig(), site, booth)
        self.loop = StateLoop(self.store, self.outbox)
        self.loop.start()

    def run(self, fn: Callable[[Batch], Any], timeout: float = 10) -> Any:
        """Run ``fn`` on the state thread; its result once committed."""
        return self.loop.call(fn).result(timeout)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        def read(b: Batch) -> list[tuple[Any, ...]]:
            b.outbox.write_rows()  # events appended earlier in this batch, as SQL sees them
            return list(b.conn.execute(sql, args).fetchall())

        rows: list[tuple[Any, ...]] = self.run(read)
        return rows

    def events(self, etype: str | None = None) -> list[dict[str, Any]]:
        """Committed event envelopes in seq order (everything posted before is committed)."""
        out = [json.loads(r[0]) for r in self.query("SELECT body FROM events ORDER BY seq")]
        return [e for e in out if etype is None or e["type"] == etype]

    def close(self) -> None:
        self.loop.stop()
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
