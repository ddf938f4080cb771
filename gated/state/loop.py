"""The state thread: the one owner of policy, queue and outbox writes.

Other threads never touch state; they ``post`` or ``call`` a function that the state thread runs
with a ``Batch``. All work that arrives while a commit is in progress is run together in the
next transaction (group commit): one fsync for many events, each durable within one commit of
its arrival. Work that is not worth a commit of its own (deleting acknowledged rows) is
``call_deferred``: it rides along with the next transaction that runs anyway, except one that
opens a gate (nothing deferred delays that commit), and runs alone only once ``tick_s`` has
passed without one. Effects registered with ``batch.after_commit``
(drive a gate, print a ticket) run only once the transaction is on disk; if it fails, they
never run.

An item that raises is rolled back alone: its events and effects are dropped and the rest of
the batch is run again and commits. Durable state lives in SQLite; a handler
that caches anything in memory registers ``batch.on_rollback`` to rebuild it.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import structlog

from drivers.threads import named_thread
from gated.state.events import Event, EventPriority, EventType, utc_now_iso
from gated.state.faults import FaultWatch, job_name
from gated.state.outbox import Outbox
from gated.state.store import StorageError, StorageFull, Store, storage_error

log = structlog.get_logger(__name__)

Handler = Callable[["Batch"], Any]
_STOP = object()


class _ItemFailed(Exception):
    def __init__(self, item: _Item, error: Exception) -> None:
        super().__init__(str(error))
        self.item = item
        self.error = error


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
    #: set when this batch's urgent device commands (a gate opening) have gone out; other
    #: device commands of the batch wait for them (``DeviceCommand.after``)
    first_out: list[threading.Event] = field(default_factory=list)

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


def _withdrawn(item: _Item) -> bool:
    """True for an item whose caller gave up (``call_wait`` timed out): it must not run.

    Any other item is marked running first, so from then on it can no longer be withdrawn
    and its caller waits for it. A re-run after a rollback finds it running already.
    """
    fut = item.future
    if fut is None or fut.running():
        return False
    return fut.cancelled() or not fut.set_running_or_notify_cancel()


class StateLoop:
    """Runs posted handlers in batches on one thread; see the module docstring."""

    def __init__(self, store: Store, outbox: Outbox, *, max_batch: int = 512,
                 tick_s: float = 1.0, clock_ok: Callable[[], bool] = lambda: True) -> None:
        """``tick_s`` is the longest the thread sleeps with nothing to do: how late, at most,
        a queued notice or the end of a storage outage goes out when no job comes."""
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
        self.storage_problem: dict[str, Any] | None = None  # what failed, since when
        self.faults = FaultWatch()
        self.on_commit: list[Callable[[list[Event]], None]] = []
        #: Called on the state thread, outside any transaction, when writes start failing
        #: (disk full, read-only, I/O error) and when they succeed again.
        self.on_storage_failed: list[Callable[[], None]] = []
        self.on_storage_recovered: list[Callable[[], None]] = []
        self._notices: list[tuple[EventType, dict[str, Any]]] = []  # go out in the next batch
        #: call_deferred items: appended by any thread (deque appends are atomic), taken by
        #: the state thread into its next batch; never wake it
        self._deferred: deque[_Item] = deque()
        self._dropped = 0  # jobs lost to a storage failure since it began

    # ------------------------------------------------------------------ API for other threads
    def post(self, fn: Handler) -> None:
        self._inbox.put(_Item(fn, None))

    def call(self, fn: Handler) -> Future[Any]:
        """Run ``fn`` on the state thread; the future resolves after its commit."""
        fut: Future[Any] = Future()
        self._inbox.put(_Item(fn, fut))
        return fut

    def call_wait(self, fn: Handler, timeout: float) -> Any:
        """``call(fn)`` and wait for its commit; on timeout ``fn`` is withdrawn, never run late.

        Raises ``concurrent.futures.TimeoutError`` only when ``fn`` did not start and never
        will: a command that answered "busy" must not open a gate seconds later. If ``fn`` had
        already started when the time ran out, its result is awaited and returned.
        """
        fut = self.call(fn)
        try:
            return fut.result(timeout=timeout)
        except FutureTimeout:
            if fut.cancel():
                raise
        return fut.result()

    def call_deferred(self, fn: Handler) -> Future[Any]:
        """Run ``fn`` with the next batch that runs anyway; the future resolves after its commit.

        For writes that need no commit of their own: posting one does not wake the state
        thread, so it runs with the next posted item or ticker whose batch opens no gate, at
        the latest ``tick_s`` after that batch (the longest the thread sleeps), or on
        ``stop()``.
        """
        fut: Future[Any] = Future()
        self._deferred.append(_Item(fn, fut))
        return fut

    def every(self, period_s: float, fn: Handler) -> None:
        """Run ``fn`` periodically on the state thread (heartbeat, housekeeping)."""
        self._tickers.append((period_s, time.monotonic() + period_s, fn))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread = named_thread(self._run, "gated-state")
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
            deferred = self._take_deferred()
            if items or deferred:
                self.run_batch(items, deferred)
        if self._deferred:  # held back by the last batch: stop() runs them before it returns
            self.run_batch([], self._take_deferred())

    def _take_deferred(self) -> list[_Item]:
        out = []
        while self._deferred:
            out.append(self._deferred.popleft())
        return out

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

    def run_batch(self, items: list[_Item], deferred: list[_Item] | None = None) -> None:
        """Run ``items`` in one transaction, and ``deferred`` after them unless one of
        ``items`` opened a gate (``Batch.first_out``): then they wait for the next batch.

        An item that raises is dropped and the rest run again in a fresh transaction (cheaper
        than a savepoint per item on the hot path: failures are rare, and handlers are
        re-runnable because their state is in SQLite). On a full disk, low-value rows are
        freed in growing shares before each new attempt.
        """
        pending = list(items)
        later = list(deferred or ())
        failed: list[tuple[_Item, BaseException]] = []
        fractions = (0.0, 0.1, 0.25, 0.5)  # of low-value rows freed before each attempt
        level = 0
        while True:
            batch = Batch(self.outbox, self.store.conn, clock_ok=self._clock_ok())
            results: list[tuple[_Item, Any]] = []
            held: list[_Item] = []
            notices = list(self._notices)
            outage = self._outage_report()
            try:
                with self.store.transaction():
                    if fractions[level]:
                        freed = self.outbox.evict_for_space(fractions[level])
                        log.warning("storage_full_evicted", rows=freed)
                    for etype, payload in notices:
                        batch.emit(etype, payload)
                    if outage is not None:
                        batch.emit(EventType.STORAGE_ERROR, outage)
                    for item in pending:
                        if _withdrawn(item):
                            continue
                        results.append((item, self._run_item(item, batch)))
                    if batch.first_out:
                        held = later  # a visitor waits for this commit
                    else:
                        for item in later:
                            if not _withdrawn(item):
                                results.append((item, self._run_item(item, batch)))
                    for report in self.outbox.take_eviction_reports():
                        batch.emit(EventType.OUTBOX_EVICTED, report)
            except _ItemFailed as f:
                self._rolled_back(batch)
                self._item_failed(f.item, f.error)
                failed.append((f.item, f.error))
                (pending if f.item in pending else later).remove(f.item)
                continue
            except StorageFull as e:
                self._rolled_back(batch)
                log.error("storage_full", attempt=level + 1, error=str(e))
                if level + 1 < len(fractions):
                    level += 1
                    continue
                self._storage_failing("disk_full", e, len(pending) + len(later))
                self._fail([(i, e) for i in pending + later] + failed)
                return
            except StorageError as e:  # read-only, I/O error: nothing can be written
                self._rolled_back(batch)
                log.error("storage_failed", error=str(e))
                self._storage_failing(e.reason, e, len(pending) + len(later))
                self._fail([(i, e) for i in pending + later] + failed)
                return
            except Exception as e:  # the state thread must survive anything
                self._rolled_back(batch)
                log.exception("state_batch_failed", error=str(e))
                self._fail([(i, e) for i in pending + later] + failed)
                return
            del self._notices[:len(notices)]
            if outage is not None:  # its report is on disk: storage works again
                self._storage_recovered(outage)
            self.commits += 1
            self.items_run += len(pending) + len(later) - len(held)
            self._deferred.extendleft(reversed(held))
            for notice in self.faults.succeeded({job_name(i.fn) for i, _ in results}):
                log.warning("state_job_recovered", job=notice["job"])
                self._notices.append((EventType.ALARM, notice))
            self._after_commit(batch, results)
            self._fail(failed)
            return

    def _item_failed(self, item: _Item, error: BaseException) -> None:
        """Log it (the traceback once per run of failures) and watch for a job that keeps
        failing: that one becomes an alarm and a ``faulted`` status."""
        name = job_name(item.fn)
        if self.faults.first_failure(name):
            log.error("state_item_failed", job=name, error=repr(error), exc_info=error)
        else:
            log.error("state_item_failed_again", job=name, error=repr(error)[:300])
        alarm = self.faults.failed(name, error)
        if alarm is not None:
            log.error("state_job_failing", job=name, failures=alarm["failures"])
            self._notices.append((EventType.ALARM, alarm))

    def _storage_failing(self, reason: str, error: Exception, jobs: int) -> None:
        self._dropped += jobs
        if self.storage_failed:
            return
        self.storage_failed = True
        self.storage_problem = {"reason": reason, "error": str(error)[:300],
                                "since": utc_now_iso(), "since_mono": time.monotonic()}
        log.error("storage_failing", reason=reason, error=str(error))
        self._call(self.on_storage_failed)

    def _outage_report(self) -> dict[str, Any] | None:
        """While storage fails: the event that ends the outage, once there is room for it.

        A commit alone proves little near a full disk (a transaction with no rows commits
        anyway, a small one fits in WAL space already allocated), so storage counts as back
        only when there is room again (``Store.has_room``) and this report commits."""
        problem = self.storage_problem
        if problem is None or not self.store.has_room():
            return None
        return {"state": "recovered", "reason": problem["reason"], "error": problem["error"],
                "failed_since": problem["since"],
                "failed_for_s": round(time.monotonic() - problem["since_mono"], 1),
                "dropped_jobs": self._dropped}

    def _storage_recovered(self, report: dict[str, Any]) -> None:
        self.storage_failed = False
        self.storage_problem = None
        self._dropped = 0
        log.warning("storage_recovered", reason=report["reason"],
                    failed_for_s=report["failed_for_s"], dropped_jobs=report["dropped_jobs"])
        self._call(self.on_storage_recovered)

    @staticmethod
    def _call(hooks: list[Callable[[], None]]) -> None:
        for hook in hooks:
            try:
                hook()
            except Exception as e:  # a hook failing is logged, not fatal
                log.exception("state_hook_failed", error=str(e))

    @staticmethod
    def _run_item(item: _Item, batch: Batch) -> Any:
        try:
            return item.fn(batch)
        except StorageError:
            raise
        except sqlite3.OperationalError as e:
            storage = storage_error(e)
            if storage is not None:
                raise storage from e
            raise _ItemFailed(item, e) from e
        except Exception as e:  # one bad item must not sink the batch
            raise _ItemFailed(item, e) from e

    @staticmethod
    def _fail(items: list[tuple[_Item, BaseException]]) -> None:
        for item, err in items:
            if item.future is not None and not item.future.done():
                item.future.set_exception(err)

    def _rolled_back(self, batch: Batch) -> None:
        for fn in batch.rollbacks:
            fn()
        self.outbox.resync()

    def _after_commit(self, batch: Batch, results: list[tuple[_Item, Any]]) -> None:
        for effect in batch.effects:
            try:
                effect()
            except Exception as e:  # an effect failing is logged, not fatal
                log.exception("effect_failed", error=str(e))
        for item, result in results:
            if item.future is not None and not item.future.done():
                item.future.set_result(result)
        if batch.events:
            for listener in self.on_commit:
                listener(batch.events)
