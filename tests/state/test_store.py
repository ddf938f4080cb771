"""Store: damaged files, unwritable and full state directories."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from gated.config import OutboxConfig
from gated.state.events import Event, EventType
from gated.state.loop import StateLoop
from gated.state.outbox import Outbox, ensure_schema, read_pending
from gated.state.store import StorageError, Store
from tests.support.tmpfs import tmpfs


def _fill(tmp: Path, n: int) -> None:
    store = Store(tmp, [ensure_schema])
    store.open()
    ob = Outbox(store, OutboxConfig(), "s", "b")
    with store.transaction():
        for i in range(n):
            ob.append(Event.make(EventType.TICKET_ISSUED, {"i": i, "pad": "x" * 300}))
    store.close()


def test_garbage_file_is_moved_aside_and_store_works(tmp_path: Path) -> None:
    (tmp_path / "gated.db").write_bytes(b"this is not a database" * 100)
    store = Store(tmp_path, [ensure_schema])
    store.open()
    assert store.recovery is not None
    assert Path(store.recovery.moved_to).exists()
    assert "not a database" in store.recovery.error
    ob = Outbox(store, OutboxConfig(), "s", "b")
    with store.transaction():
        ob.append(Event.make(EventType.TICKET_ISSUED))
    store.close()


def test_damaged_pages_keep_what_can_be_read(tmp_path: Path) -> None:
    _fill(tmp_path, 2000)
    db = tmp_path / "gated.db"
    data = bytearray(db.read_bytes())
    page = 4096
    mid = (len(data) // page // 2) * page
    data[mid:mid + page] = b"\xff" * page  # one leaf page of events destroyed
    db.write_bytes(bytes(data))
    store = Store(tmp_path, [ensure_schema])
    store.open()
    assert store.recovery is not None
    kept = store.recovery.salvaged.get("events", 0)
    assert 1500 <= kept < 2000, store.recovery
    ob = Outbox(store, OutboxConfig(), "s", "b")
    with store.transaction():
        new = ob.append(Event.make(EventType.TICKET_ISSUED))
    assert new.seq > 2000  # never reuses a number that may have been published
    rows = read_pending(store.conn, 0, 5000)
    assert len(rows) == kept + 1
    store.close()


def test_state_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StorageError, match="cannot create state directory"):
        Store(tmp_path / "f" / "state").open()


def test_read_only_state_dir(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        with pytest.raises(StorageError, match="not writable.*chown"):
            Store(ro).open()


def test_really_full_disk_survives_and_recovers(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "size=2m") as small:
        filler = small / "filler"
        store = Store(small, [ensure_schema])
        store.open()
        ob = Outbox(store, OutboxConfig(), "s", "b")
        loop = StateLoop(store, ob)
        loop.start()
        with store.transaction():
            ob.append(Event.make(EventType.HEARTBEAT))  # reserves the first seq block
        with open(filler, "wb") as f:  # the SD card fills up with something else
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
        failures = 0
        for i in range(200):
            fut = loop.call(lambda b, i=i: b.emit(EventType.TICKET_ISSUED,
                                                  {"i": i, "pad": "t" * 2000}))
            try:
                fut.result(30)
            except StorageError:
                failures += 1
        assert failures > 0 and loop.storage_failed and loop.running
        filler.unlink()  # IT frees space
        seq = loop.call(lambda b: b.emit(EventType.ALARM, {"kind": "test"}).seq).result(30)
        assert not loop.storage_failed
        loop.stop()
        assert any(r.seq == seq for r in read_pending(store.conn, 0, 100_000))
        store.close()


def _quiet_moment(store: Store) -> None:
    """Pause the writer, as the daemon's quiet moments do, until two checkpoints have ended:
    the second started inside the pause, so it copied the whole WAL and the next
    write starts the WAL over. Waiting on the count, not a fixed sleep, keeps this test honest
    on a loaded machine (a fixed 50 ms once let the WAL reach 5 MB under a parallel run)."""
    start = store.checkpointer.checkpoints
    deadline = time.monotonic() + 10
    while store.checkpointer.checkpoints < start + 2 and time.monotonic() < deadline:
        time.sleep(0.005)


def _wal_size_after_writes(tmp: Path, checkpointer_running: bool) -> tuple[int, int]:
    """Write ~8 MB of events in 400 commits; the WAL file's size and checkpoints run."""
    store = Store(tmp, [ensure_schema])
    store.open()
    store.checkpointer.threshold_bytes = 256 * 1024
    store.checkpointer.check_s = 0.01
    if not checkpointer_running:
        store.checkpointer.stop()
    ob = Outbox(store, OutboxConfig(max_bytes=1 << 30), "s", "b")
    try:
        for n in range(400):
            with store.transaction():
                for i in range(20):
                    ob.append(Event.make(EventType.TICKET_ISSUED, {"i": i, "pad": "x" * 1000}))
            if n % 20 == 19 and checkpointer_running:
                _quiet_moment(store)
        wal = store.path.with_name(store.path.name + "-wal")
        return wal.stat().st_size, store.checkpointer.checkpoints
    finally:
        store.close()


def test_wal_is_checkpointed_beside_the_writer(tmp_path: Path) -> None:
    size, checkpoints = _wal_size_after_writes(tmp_path / "on", checkpointer_running=True)
    assert checkpoints >= 2
    assert size < 4 * 1024 * 1024
    # Control: without the checkpointer only the writer's large backstop bounds the WAL.
    size_off, _ = _wal_size_after_writes(tmp_path / "off", checkpointer_running=False)
    assert size_off > 6 * 1024 * 1024
