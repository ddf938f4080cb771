"""Subprocess for the uplink crash test: a booth (store, state thread, uplink) that appends
``count`` events in small batches, printing ``<seq> <id>`` for each only after its commit,
then keeps draining until it is killed.

    python -m tests.support.uplink_writer STATE_DIR BROKER_PORT COUNT
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import structlog

from gated.state.events import EventType
from gated.state.loop import Batch
from gated.uplink.service import Uplink
from tests.support.mosquitto import Broker
from tests.support.uplink_harness import Booth, booth_config, ticket_payload

BATCH = 20


def main() -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    state_dir, port, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    booth = Booth(state_dir)
    broker = Broker.__new__(Broker)  # only its port is needed to build the config
    broker.port, broker.tls_port, broker.certs = port, 0, None
    cfg = booth_config(broker, state_dir, max_inflight=32)  # type: ignore[arg-type]
    uplink = Uplink(cfg, booth.store, booth.loop, booth.outbox, None, None, None)
    uplink.start()
    written = 0
    while written < count:
        n = min(BATCH, count - written)

        def job(b: Batch, n: int = n, start: int = written) -> list[tuple[int, str]]:
            return [(e.seq, e.id) for e in
                    (b.emit(EventType.TICKET_ISSUED, ticket_payload(start + i))
                     for i in range(n))]
        rows = booth.loop.call(job).result()
        sys.stdout.write("".join(f"{seq} {eid}\n" for seq, eid in rows))
        sys.stdout.flush()
        written += n
        time.sleep(0.002)
    sys.stdout.write("done\n")
    sys.stdout.flush()
    threading.Event().wait()


if __name__ == "__main__":
    main()
