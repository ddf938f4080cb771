"""Local lists on a real store: snapshots, deltas, refusals that keep the old list, restarts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date, time
from pathlib import Path
from time import monotonic

import pytest

from gated.booth.lists import (
    AlertLevel,
    ListError,
    ListKind,
    Lists,
    SnapshotAssembler,
    delta_checksum,
    entries_checksum,
    parse_snapshot,
)
from gated.state.store import Store
from tests.support.state_rig import StateRig

BADGES = [{"uid": "04a1b2c3", "zones": ["office"], "label": "staff"},
          {"uid": "DEADBEEF", "revoked": True, "label": "contractor"}]
APPTS = [{"ref": "R1", "pseudonym": "p1", "service": "social", "zone": "office",
          "day": "2026-11-23", "start": "09:30", "end": "10:00", "priority": True}]
ALERTS = [{"key": "p9", "level": "watch", "code": "c1"}]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path, [Lists.ensure_schema])
    s.open()
    yield s
    s.close()


def snap(lists: Lists, store: Store, kind: ListKind, version: int, entries: list[dict]) -> None:  # type: ignore[type-arg]
    with store.transaction():
        lists.apply_snapshot(kind, version, entries, entries_checksum(entries))


def test_snapshots_and_lookups(store: Store) -> None:
    lists = Lists(store.conn)
    snap(lists, store, ListKind.STAFF_BADGES, 3, BADGES)
    snap(lists, store, ListKind.APPOINTMENTS, 1, APPTS)
    snap(lists, store, ListKind.ALERTS, 9, ALERTS)
    badge = lists.staff_badge("04A1B2C3")
    assert badge is not None and badge.zones == ("office",) and not badge.revoked
    assert lists.staff_badge("deadbeef").revoked  # type: ignore[union-attr]
    (a,) = lists.appointments("p1", date(2026, 11, 23))
    assert (a.start, a.end, a.priority) == (time(9, 30), time(10, 0), True)
    assert lists.appointment("R1") == a and lists.appointments("p1", date(2026, 11, 24)) == []
    assert lists.alert("p9").level is AlertLevel.WATCH  # type: ignore[union-attr]
    assert lists.versions() == {"staff_badges": 3, "appointments": 1, "alerts": 9}


def test_lists_survive_a_restart(tmp_path: Path) -> None:
    with Store(tmp_path, [Lists.ensure_schema]) as s:
        snap(Lists(s.conn), s, ListKind.STAFF_BADGES, 2, BADGES)
    with Store(tmp_path, [Lists.ensure_schema]) as s:
        lists = Lists(s.conn)
        assert lists.versions()["staff_badges"] == 2 and lists.staff_badge("04A1B2C3")


def test_delta_applies_on_its_base_only(store: Store) -> None:
    lists = Lists(store.conn)
    snap(lists, store, ListKind.STAFF_BADGES, 3, BADGES)
    ups = [{"uid": "CAFEF00D", "label": "staff"}]
    dels = ["04a1b2c3"]
    with store.transaction():
        lists.apply_delta(ListKind.STAFF_BADGES, 3, 4, ups, dels, delta_checksum(ups, dels))
    assert lists.staff_badge("04A1B2C3") is None and lists.staff_badge("CAFEF00D")
    assert Lists(store.conn).staff_badge("CAFEF00D")  # written, not only indexed
    with pytest.raises(ListError) as e:
        lists.apply_delta(ListKind.STAFF_BADGES, 5, 6, ups, [], delta_checksum(ups, []))
    assert e.value.reason == "version_gap"


@pytest.mark.parametrize(("entries", "checksum", "reason"), [
    (BADGES, "0" * 64, "bad_checksum"),
    ([{"uid": "not-hex"}], None, "malformed"),
    ([{"zones": []}], None, "malformed"),
    ([{"uid": "AA", "zones": "office"}], None, "malformed"),
    ([{"uid": "AA", "valid_until": "31/12/2027"}], None, "malformed"),
    (["just a string"], None, "malformed"),
])
def test_a_bad_list_is_rejected_whole(store: Store, entries: list, checksum: str | None,  # type: ignore[type-arg]
                                      reason: str) -> None:
    lists = Lists(store.conn)
    snap(lists, store, ListKind.STAFF_BADGES, 3, BADGES)
    with pytest.raises(ListError) as e, store.transaction():
        lists.apply_snapshot(ListKind.STAFF_BADGES, 4, [*BADGES[:1], *entries],
                             checksum or entries_checksum([*BADGES[:1], *entries]))
    assert e.value.reason == reason
    assert lists.versions()["staff_badges"] == 3 and lists.staff_badge("DEADBEEF")


def test_stale_snapshot_and_bad_appointment_window(store: Store) -> None:
    lists = Lists(store.conn)
    snap(lists, store, ListKind.APPOINTMENTS, 5, APPTS)
    with pytest.raises(ListError) as e:
        snap(lists, store, ListKind.APPOINTMENTS, 4, APPTS)
    assert e.value.reason == "stale_version"
    bad = [{**APPTS[0], "end": "09:00"}]
    with pytest.raises(ListError) as e:
        snap(lists, store, ListKind.APPOINTMENTS, 6, bad)
    assert e.value.reason == "malformed" and "end" in str(e.value)


def test_rollback_then_reload_restores_the_index(store: Store) -> None:
    lists = Lists(store.conn)
    snap(lists, store, ListKind.ALERTS, 1, ALERTS)
    with pytest.raises(RuntimeError), store.transaction():
        other = [{"key": "p7", "level": "revoked"}]
        lists.apply_snapshot(ListKind.ALERTS, 2, other, entries_checksum(other))
        raise RuntimeError("the batch failed after the list was applied")
    lists.reload()
    assert lists.alert("p9") and lists.alert("p7") is None and lists.versions()["alerts"] == 1


def test_refusal_in_a_batch_leaves_the_batch_alone(tmp_path: Path) -> None:
    """A refused list change is answered inside its batch: the items committed with it run
    once (a raised refusal would roll them back and run them again) and the refusal's
    ``list.sync`` event is committed with them."""
    with StateRig(tmp_path, [Lists.ensure_schema]) as rig:
        loop = rig.loop
        lists = rig.run(lambda b: Lists(b.conn))
        gate, ran = threading.Event(), []
        loop.post(lambda b: gate.wait(5))  # holds the thread so the next three share a batch
        loop.post(lambda b: ran.append("before"))
        gap = loop.call(lambda b: lists.apply_in(
            b, lambda: lists.apply_delta(ListKind.ALERTS, 4, 5, [], [], delta_checksum([], [])),
            kind="alerts", version=5, entries=0, source="mqtt", op="delta"))
        after = loop.call(lambda b: ran.append("after"))
        gate.set()
        refused = gap.result(5)
        after.result(5)
        assert isinstance(refused, ListError)
        assert refused.reason == "version_gap" and ran == ["before", "after"]
        assert [e["data"] for e in rig.events("list.sync")] == [
            {"list": "alerts", "version": 5, "ok": False, "reason": "version_gap",
             "source": "mqtt"}]


def test_fifty_thousand_entries(store: Store) -> None:
    lists = Lists(store.conn)
    entries = [{"key": f"p{i}", "level": "watch"} for i in range(50_000)]
    snap(lists, store, ListKind.ALERTS, 1, entries)
    assert lists.counts()[ListKind.ALERTS] == 50_000 and lists.alert("p49999")
    assert Lists(store.conn).counts()[ListKind.ALERTS] == 50_000


def test_parse_snapshot_file_format() -> None:
    obj = json.loads(json.dumps({"list": "alerts", "version": 1, "entries": ALERTS,
                                 "checksum": entries_checksum(ALERTS)}))
    assert parse_snapshot(obj)[0] is ListKind.ALERTS
    for bad, reason in (([], "malformed"), ({"list": "people"}, "unknown_list"),
                        ({"list": "alerts", "version": -1}, "malformed"),
                        ({"list": "alerts", "version": 1, "entries": {}}, "malformed")):
        with pytest.raises(ListError) as e:
            parse_snapshot(bad)
        assert e.value.reason == reason


def test_chunked_snapshot_assembly() -> None:
    entries = [{"key": f"p{i}", "level": "watch"} for i in range(10)]
    checksum = entries_checksum(entries)
    asm = SnapshotAssembler()

    def chunk(i: int, n: int = 3, version: int = 4) -> dict:  # type: ignore[type-arg]
        part = entries[i * 4:(i + 1) * 4]
        return {"list": "alerts", "version": version, "chunk": i, "chunks": n,
                "entries": part, "checksum": checksum}
    assert asm.add(chunk(2)) is None and asm.add(chunk(0)) is None
    kind, version, whole, cs = asm.add(chunk(1))  # type: ignore[misc]
    assert (kind, version, whole, cs) == (ListKind.ALERTS, 4, entries, checksum)
    assert asm.add(chunk(0, version=5)) is None  # a new version starts over
    with pytest.raises(ListError):
        asm.add({**chunk(1), "chunk": 7})
    small = SnapshotAssembler(max_entries=5)
    small.add(chunk(0))
    with pytest.raises(ListError) as e:
        small.add(chunk(1))
    assert e.value.reason == "too_large"


def test_the_assembler_says_when_its_oldest_snapshot_expires() -> None:
    """The rpc worker sleeps until then (or until a message comes) instead of polling."""
    entries = [{"key": "p1", "level": "watch"}]
    asm = SnapshotAssembler(timeout_s=30.0)
    assert asm.next_expiry() is None
    before = monotonic()
    asm.add({"list": "alerts", "version": 1, "chunk": 0, "chunks": 2, "entries": entries,
             "checksum": entries_checksum(entries + entries)})
    due = asm.next_expiry()
    assert due is not None and before + 30.0 <= due <= monotonic() + 30.0
    assert asm.expire(due - 0.001) == []
    assert [i.version for i in asm.expire(due)] == [1]
    assert asm.next_expiry() is None
