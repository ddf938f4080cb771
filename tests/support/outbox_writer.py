"""Subprocess for the SIGKILL test: appends events through the state loop and prints
``<seq> <id>`` for each one only after its commit returned, then keeps going forever."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from gated.config import OutboxConfig
from gated.state.events import EventType
from gated.state.loop import Batch, StateLoop
from gated.state.outbox import Outbox, ensure_schema
from gated.state.store import Store


def main() -> None:
    state_dir = Path(sys.argv[1])
    store = Store(state_dir, [ensure_schema])
    store.open()
    outbox = Outbox(store, OutboxConfig(), "s", "b")
    loop = StateLoop(store, outbox)
    loop.start()
    lock = threading.Lock()

    def producer(n: int) -> None:
        i = 0
        while True:
            i += 1
            fut = loop.call(lambda b, i=i: _emit(b, n, i))
            seq, eid = fut.result()
            with lock:
                sys.stdout.write(f"{seq} {eid}\n")
                sys.stdout.flush()

    for n in range(4):
        threading.Thread(target=producer, args=(n,), daemon=True).start()
    threading.Event().wait()


def _emit(b: Batch, n: int, i: int) -> tuple[int, str]:
    ev = b.emit(EventType.TICKET_ISSUED, {"producer": n, "i": i})
    return ev.seq, ev.id


if __name__ == "__main__":
    main()
