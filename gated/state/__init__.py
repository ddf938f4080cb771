"""The one writer: the state thread with group commit (``loop``), the SQLite file (``store``),
the event outbox (``outbox``), typed events (``events``), WAL checkpoints (``wal``) and the
clock's NTP state (``clock``). Only the state thread writes; other threads read through
``open_readonly`` connections."""

from gated.state.clock import clock_synchronised
from gated.state.events import Event, EventPriority, EventType, new_event_id, utc_now_iso
from gated.state.loop import Batch, StateLoop
from gated.state.outbox import (
    Outbox,
    OutboxStats,
    PendingRow,
    read_pending,
    read_row,
    read_stats,
)
from gated.state.outbox import figures as outbox_figures
from gated.state.ranges import parts as seq_parts
from gated.state.session import Session, SessionSource
from gated.state.store import (
    DB_NAME,
    SchemaHook,
    StorageError,
    StorageFull,
    Store,
    open_readonly,
)

__all__ = [
    "DB_NAME", "Batch", "Event", "EventPriority", "EventType", "Outbox", "OutboxStats",
    "PendingRow", "SchemaHook", "Session", "SessionSource", "StateLoop", "StorageError",
    "StorageFull", "Store",
    "clock_synchronised", "new_event_id", "open_readonly", "outbox_figures", "read_pending",
    "read_row", "read_stats", "seq_parts", "utc_now_iso",
]
