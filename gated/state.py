"""The state thread: the one owner of policy, queue and outbox writes.

Other threads never touch state; they ``post`` or ``call`` a function that the state thread runs
with a ``Batch``. All work that arrives while a commit is in progress is run together in the
next transaction (group commit): one fsync for many events, each durable within one commit of
its arrival. Effects registered with ``batch.after_commit`` (drive a gate, print a ticket)
run only once the transaction is on disk; if it fails, they never run.

Each item runs inside its own SAVEPOINT: an item that raises is rolled back alone, its events
and effects dropped, and the rest of the batch commits. Durable state lives in SQLite; a handler
that caches anything in memory registers ``batch.on_rollback`` to rebuild it.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import structlog

from gated.events import Event, EventPriority, EventType
from gated.outbox import Outbox
from gated.store import StorageFull, Store, is_full_error

log = structlog.get_logger(__name__)

Handler = Callable[["Batch"], Any]
_STOP = object()


@dataclass
class _Item:
    fn: Handler
    future: Future[Any] | None


@dataclass
class Batch:
    """What one item may do: write rows (``conn``), emit events, schedule effects."""

    outbox: Outbox
    conn: Any
    events: list[Event] = field(default_factory=list)
    effects: list[Callable[[], None]] = field(default_factory=list)
    rollbacks: list[Callable[[], None]] = field(default_factory=list)
    clock_ok: bool = True

    def emit(self, type: EventType, payload: dict[str, Any] | None = None, *,
             priority: EventPriority | None = None) -> Event:
        event = self.outbox.append(Event.make(type, payload, priority=priority,
                                              clock_ok=self.clock_ok))
        self.events.append(event)
        return event

    def after_commit(self, fn: Callable[[], None]) -> None:
        self.effects.append(fn)

    def on_rollback(self, fn: Callable[[], None]) -> None:
        self.rollbacks.append(fn)


class StateLoop:
    """Runs posted handlers in batches on one thread; see the module docstring."""

    def __init__(self, store: Store, outbox: Outbox, *, max_batch: int = 512,
                 tick_s: float = 1.0, clock_ok: Callable[[], bool] = lambda: True) -> None:
        self.store = store
        self.outbox = outbox
        self.max_batch = max_batch
        self.tick_s = tick_s
        self._clock_ok = clock_ok
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._tickers: list[tuple[float, float, Handler]] = []  # (period, next_due, fn)
        self.commits = 0
        self.items_run = 0
        self.storage_failed = False
        self.on_commit: list[Callable[[list[Event]], None]] = []

    # ------------------------------------------------------------------ API for other threads
    def post(self, fn: Handler) -> None:
        self._inbox.put(_Item(fn, None))

    def call(self, fn: Handler) -> Future[Any]:
        """Run ``fn`` on the state thread; the future resolves after its commit."""
        fut: Future[Any] = Future()
        self._inbox.put(_Item(fn, fut))
        return fut

    def every(self, period_s: float, fn: Handler) -> None:
        """Run ``fn`` periodically on the state thread (heartbeat, housekeeping)."""
        self._tickers.append((period_s, time.monotonic() + period_s, fn))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gated-state", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._inbox.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        stopping = False
        while not stopping:
            items: list[_Item] = []
            try:
                first = self._inbox.get(timeout=self._next_timeout())
            except queue.Empty:
                first = None
            while first is not None:
                if first is _STOP:
                    stopping = True
                    break
                items.append(first)
                if len(items) >= self.max_batch:
                    break
                try:
                    first = self._inbox.get_nowait()
                except queue.Empty:
                    first = None
            items.extend(self._due_tickers())
            if items:
                self.run_batch(items)

    def _next_timeout(self) -> float:
        if not self._tickers:
            return self.tick_s
        due = min(t[1] for t in self._tickers) - time.monotonic()
        return max(0.0, min(self.tick_s, due))

    def _due_tickers(self) -> list[_Item]:
        now = time.monotonic()
        out = []
        for i, (period, due, fn) in enumerate(self._tickers):
            if now >= due:
                out.append(_Item(fn, None))
                self._tickers[i] = (period, now + period, fn)
        return out

    def run_batch(self, items: list[_Item]) -> None:
        """Run ``items`` in one transaction; on a full disk, free low-value rows and retry."""
        fractions = (0.0, 0.1, 0.25, 0.5)  # of low-value rows freed before each attempt
        for attempt, fraction in enumerate(fractions, start=1):
            batch = Batch(self.outbox, self.store.conn, clock_ok=self._clock_ok())
            results: list[tuple[_Item, Any, BaseException | None]] = []
            try:
                with self.store.transaction() as conn:
                    if fraction:
                        freed = self.outbox.evict_for_space(fraction)
                        log.warning("storage_full_evicted", rows=freed)
                    for item in items:
                        results.append(self._run_item(conn, batch, item))
                    report = self.outbox.take_eviction_report()
                    if report:
                        batch.emit(EventType.OUTBOX_EVICTED,
                                   {"evicted": report, "evicted_total": self.outbox.evicted_total})
            except StorageFull as e:
                self._rolled_back(batch)
                log.error("storage_full", attempt=attempt, error=str(e))
                if attempt < len(fractions):
                    continue
                self.storage_failed = True
                for item in items:
                    if item.future is not None and not item.future.done():
                        item.future.set_exception(e)
                return
            except Exception as e:  # noqa: BLE001 - the state thread must survive anything
                self._rolled_back(batch)
                log.exception("state_batch_failed", error=str(e))
                for item in items:
                    if item.future is not None and not item.future.done():
                        item.future.set_exception(e)
                return
            self.storage_failed = False
            self.commits += 1
            self.items_run += len(items)
            self._after_commit(batch, results)
            return

    def _run_item(self, conn: Any, batch: Batch, item: _Item) -> tuple[_Item, Any, Exception | None]:
        mark = (len(batch.events), len(batch.effects), len(batch.rollbacks))
        conn.execute("SAVEPOINT item")
        try:
            result = item.fn(batch)
        except StorageFull:
            raise
        except sqlite3.OperationalError as e:
            if is_full_error(e):
                raise StorageFull(str(e)) from e
            self._undo_item(conn, batch, mark)
            log.exception("state_item_failed", handler=getattr(item.fn, "__name__", "?"),
                          error=str(e))
            return item, None, e
        except Exception as e:  # noqa: BLE001 - one bad item must not sink the batch
            self._undo_item(conn, batch, mark)
            log.exception("state_item_failed", handler=getattr(item.fn, "__name__", "?"),
                          error=str(e))
            return item, None, e
        conn.execute("RELEASE item")
        return item, result, None

    def _undo_item(self, conn: Any, batch: Batch, mark: tuple[int, int, int]) -> None:
        """Roll one failed item back to its savepoint; if SQLite already ended the whole
        transaction, the error propagates and the batch as a whole is rolled back."""
        conn.execute("ROLLBACK TO item")
        conn.execute("RELEASE item")
        for fn in batch.rollbacks[mark[2]:]:
            fn()
        del batch.events[mark[0]:], batch.effects[mark[1]:], batch.rollbacks[mark[2]:]
        self.outbox.resync()

    def _rolled_back(self, batch: Batch) -> None:
        for fn in batch.rollbacks:
            fn()
        self.outbox.resync()

    def _after_commit(self, batch: Batch, results: list[tuple[_Item, Any, Any]]) -> None:
        for effect in batch.effects:
            try:
                effect()
            except Exception as e:  # noqa: BLE001 - an effect failing is logged, not fatal
                log.exception("effect_failed", error=str(e))
        for item, result, err in results:
            if item.future is not None and not item.future.done():
                if err is not None:
                    item.future.set_exception(err)
                else:
                    item.future.set_result(result)
        if batch.events:
            for listener in self.on_commit:
                listener(batch.events)
