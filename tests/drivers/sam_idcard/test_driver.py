"""SamCardReader against SamReaderSim over a real pty: real GA/T 467 bytes both ways.

Polls are scaled down (every 20 ms) so the file stays fast; every wait is "until something
happens, or fail after a generous limit", never a timing assertion.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from drivers.base import (
    DeviceFault,
    DeviceState,
    DeviceTimeout,
    DeviceUnavailable,
    IdCardRead,
    Observation,
    ProtocolError,
    UnreadableCard,
)
from drivers.registry import driver_class
from drivers.sam_idcard.codec import Status
from drivers.sam_idcard.driver import SamCardReader
from drivers.sam_idcard.settings import SamReaderConfig
from drivers.sim.sam_cards import RawCard
from drivers.sim.sam_reader import SamFault, SamReaderSim
from drivers.supervisor import Backoff, DeviceRunner, wait_for_state
from tests.support import polling
from tests.support.cards import ADULT, HMT, TEST_CARDS
from tests.support.devices import device_factory

pytestmark = pytest.mark.timeout(30)
LIMIT_S = 3.0
pump_until = partial(polling.pump_until, limit=LIMIT_S)


def config(port: str, **overrides: object) -> SamReaderConfig:
    values: dict[str, object] = dict(type="sam_idcard", port=port, poll_interval_ms=20,
                                     find_timeout_ms=50, read_timeout_ms=500)
    values.update(overrides)
    return SamReaderConfig.model_validate(values)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SamReaderSim]:
    with SamReaderSim(link=str(tmp_path / "ttySAM")) as module:
        yield module


@pytest.fixture
def make_reader(sim: SamReaderSim) -> Iterator[Callable[..., SamCardReader]]:
    with device_factory(lambda **over: SamCardReader("id_reader", config(sim.port, **over))
                        ) as make:
        yield make


@pytest.fixture
def reader(make_reader: Callable[..., SamCardReader]) -> SamCardReader:
    return make_reader()


def pump(reader: SamCardReader, polls: int) -> list[Observation]:
    out: list[Observation] = []
    for _ in range(polls):
        out += reader.poll(0.05)
    return out


def is_read(o: Observation) -> bool:
    return isinstance(o, IdCardRead)


def is_unreadable(o: Observation) -> bool:
    return isinstance(o, UnreadableCard)


def error_of(reader: SamCardReader, polls: int = 20) -> Exception:
    for _ in range(polls):
        try:
            reader.poll(0.05)
        except (DeviceTimeout, DeviceUnavailable, DeviceFault, ProtocolError) as e:
            return e
    raise AssertionError("no error raised")


def test_registered_for_its_config_type() -> None:
    assert driver_class("sam_idcard") is SamCardReader


def test_registry_builds_it_from_config(sim: SamReaderSim) -> None:
    from drivers.registry import build_driver

    driver = build_driver("id_reader", config(sim.port))
    assert isinstance(driver, SamCardReader)


@pytest.mark.parametrize("key", sorted(TEST_CARDS))
def test_every_card_type_is_read_once(key: str, sim: SamReaderSim,
                                      reader: SamCardReader) -> None:
    card = TEST_CARDS[key]
    assert pump(reader, 3) == []
    sim.present(card)
    out = pump_until(reader, is_read)
    (read,) = out
    assert isinstance(read, IdCardRead)
    assert read.id_number == card.id_number  # type: ignore[attr-defined]
    assert read.birth == card.birth  # type: ignore[attr-defined]
    assert read.valid_to == card.valid_to  # type: ignore[attr-defined]
    assert pump(reader, 10) == []
    assert sim.reads == 1


@pytest.mark.parametrize("refind", [False, True])
def test_card_left_on_reader_gives_one_read(refind: bool, sim: SamReaderSim,
                                            reader: SamCardReader) -> None:
    sim.refind_while_present = refind
    sim.present(ADULT)
    pump_until(reader, is_read)
    assert pump(reader, 25) == []
    assert sim.reads == 1
    sim.remove()
    assert pump(reader, 3) == []
    sim.present(ADULT)  # the same card again: a new presentation
    pump_until(reader, is_read)
    assert sim.reads == 2


def test_split_replies_are_framed_by_length(sim: SamReaderSim, reader: SamCardReader) -> None:
    sim.split = True
    sim.present(HMT)
    (read,) = pump_until(reader, is_read)
    assert isinstance(read, IdCardRead) and read.card_type == "hmt_permit"


def test_noise_before_replies_is_skipped(sim: SamReaderSim, reader: SamCardReader) -> None:
    sim.fault = SamFault.NOISE_PREFIX
    sim.split = True
    sim.present(ADULT)
    (read,) = pump_until(reader, is_read)
    assert isinstance(read, IdCardRead) and read.id_number == ADULT.id_number
    assert reader.stats["resyncs"] >= 3  # find, select and read each came after noise


def test_garbage_is_a_protocol_error_and_the_link_recovers(sim: SamReaderSim,
                                                           reader: SamCardReader) -> None:
    sim.fault = SamFault.GARBAGE
    e = error_of(reader)
    assert isinstance(e, ProtocolError) and e.reason == "garbage"
    sim.fault = SamFault.NONE
    sim.present(ADULT)
    pump_until(reader, is_read)


def test_bad_checksum_is_a_protocol_error(sim: SamReaderSim, reader: SamCardReader) -> None:
    sim.fault = SamFault.BAD_CHECKSUM
    e = error_of(reader)
    assert isinstance(e, ProtocolError) and e.reason == "bad_checksum"


def test_one_read_failure_is_retried(sim: SamReaderSim, reader: SamCardReader) -> None:
    sim.fail_reads = 1
    sim.present(ADULT)
    out = pump_until(reader, is_read)
    assert not any(is_unreadable(o) for o in out)


def test_persistent_read_failure_is_one_unreadable_card(sim: SamReaderSim,
                                                        reader: SamCardReader) -> None:
    sim.fail_reads = 100
    sim.present(ADULT)
    (u,) = pump_until(reader, is_unreadable)
    assert u == UnreadableCard("read_failed")
    assert pump(reader, 10) == []  # the card still lies there: no repeat
    sim.remove()
    sim.fail_reads = 0
    pump(reader, 2)
    sim.present(ADULT)
    pump_until(reader, is_read)


@pytest.mark.parametrize("fault", [SamFault.BAD_CHECKSUM, SamFault.TRUNCATED])
def test_a_damaged_read_reply_is_read_again_while_the_card_answers(
        fault: SamFault, sim: SamReaderSim, reader: SamCardReader) -> None:
    sim.refind_while_present = True  # a module that still finds the card after the read
    sim.damage_reads(fault, count=2)  # two replies damaged on the wire, the third arrives
    sim.present(ADULT)
    out = pump_until(reader, is_read)
    assert not any(is_unreadable(o) for o in out) and sim.reads == 3
    assert reader.stats["unreadable"] == 0


@pytest.mark.parametrize("fault", [SamFault.BAD_CHECKSUM, SamFault.TRUNCATED])
def test_a_damaged_read_reply_tells_the_visitor_to_present_the_card_again(
        fault: SamFault, sim: SamReaderSim, make_reader: Callable[..., SamCardReader]) -> None:
    """The module halted the card after reading it, so it cannot be read again where it lies:
    the visitor is told at once (an observation, not a protocol error and silence). With a
    10 s read timeout three attempts of waiting it out would overrun the test's 30 s."""
    reader = make_reader(read_timeout_ms=10000)
    sim.damage_reads(fault, count=1)
    sim.present(ADULT)
    (u,) = pump_until(reader, is_unreadable)
    assert u == UnreadableCard(str(fault))
    sim.remove()
    pump(reader, 2)
    sim.present(ADULT)  # presented again: read
    pump_until(reader, is_read)


def test_a_reply_damaged_every_time_ends_in_one_unreadable_card(
        sim: SamReaderSim, make_reader: Callable[..., SamCardReader]) -> None:
    reader = make_reader(read_timeout_ms=10000)
    sim.refind_while_present = True
    sim.damage_reads(SamFault.TRUNCATED, count=100)
    sim.present(ADULT)
    (u,) = pump_until(reader, is_unreadable)
    assert u == UnreadableCard("truncated")
    assert pump(reader, 5) == []  # one per presentation
    assert 100 - sim.read_faults == 3  # READ_ATTEMPTS reads, each cut off


def test_one_stall_of_the_module_does_not_take_it_offline(sim: SamReaderSim) -> None:
    """The defaults ride out a module that answers one find 300 ms late (a real one took
    116 ms against a 100 ms timeout and the reader went offline); silence still does."""
    states: list[DeviceState] = []
    cfg = SamReaderConfig(type="sam_idcard", port=sim.port)  # the defaults
    runner = DeviceRunner("id_reader", lambda: SamCardReader("id_reader", cfg),
                          on_observation=lambda _n, _o: None,
                          on_state=lambda _n, _o, new, _r: states.append(new),
                          backoff=Backoff(initial_s=0.02, max_s=0.1))
    runner.start()
    try:
        assert wait_for_state(runner, DeviceState.READY, LIMIT_S)
        for _ in range(3):
            requests = sim.requests
            sim.stall_next_s = 0.3
            polling.wait_for(lambda r=requests: sim.requests > r + 2, LIMIT_S, "polls after")
        assert states == [DeviceState.READY]
        sim.fault = SamFault.SILENT
        assert wait_for_state(runner, DeviceState.OFFLINE, LIMIT_S)
    finally:
        runner.stop()


@pytest.mark.parametrize(("status", "reason"), [
    (Status.SAM_AUTH_CARD_FAILED, "sam_auth_card_failed"),
    (Status.CARD_AUTH_SAM_FAILED, "card_auth_sam_failed"),
    (Status.INFO_CHECK_FAILED, "info_check_failed"),
    (Status.UNKNOWN_CARD_TYPE, "unknown_card_type"),
    (Status.RANDOM_FAILED, "random_failed"),
    (Status.FIELD_EMPTY, "field_empty"),
])
def test_card_level_status_is_an_unreadable_card(status: Status, reason: str,
                                                 sim: SamReaderSim,
                                                 reader: SamCardReader) -> None:
    sim.read_status = status
    sim.present(ADULT)
    (u,) = pump_until(reader, is_unreadable)
    assert u == UnreadableCard(reason)


def _bad_date_block() -> bytes:
    block = bytearray(ADULT.text_block())
    block[36:52] = "19800231".encode("utf-16-le")
    return bytes(block)


@pytest.mark.parametrize(("card", "reason"), [
    (RawCard(_bad_date_block()), "bad_date"),
    (RawCard(ADULT.text_block()[:250]), "bad_length"),  # the card is halted: report it
    (RawCard(ADULT.text_block()[:248] + "Q".encode("utf-16-le") + bytes(6)),
     "unknown_card_type"),
])
def test_invalid_card_data_is_an_unreadable_card(card: object, reason: str, sim: SamReaderSim,
                                                 reader: SamCardReader) -> None:
    sim.present(card)  # type: ignore[arg-type]
    (u,) = pump_until(reader, is_unreadable)
    assert u == UnreadableCard(reason)
    assert pump(reader, 5) == []


def test_silence_is_a_timeout(sim: SamReaderSim, reader: SamCardReader) -> None:
    sim.fault = SamFault.SILENT
    assert isinstance(error_of(reader), DeviceTimeout)


def test_open_fails_on_a_silent_module(sim: SamReaderSim) -> None:
    sim.fault = SamFault.SILENT
    r = SamCardReader("id_reader", config(sim.port))
    with pytest.raises(DeviceTimeout):
        r.open()
    r.close()


def test_open_fails_on_a_missing_port(tmp_path: Path) -> None:
    r = SamCardReader("id_reader", config(str(tmp_path / "nothing")))
    with pytest.raises(DeviceUnavailable):
        r.open()
    r.close()


@pytest.mark.parametrize("status", [Status.SAM_SELF_TEST_FAILED, Status.SAM_NOT_AUTHORIZED,
                                    Status.UNAUTHORIZED, Status.UNRECOGNIZED_ERROR])
def test_sam_fault_degrades_until_the_sam_recovers(status: Status, sim: SamReaderSim,
                                                   reader: SamCardReader) -> None:
    sim.sam_status = status
    e = error_of(reader)
    assert isinstance(e, DeviceFault) and e.state == DeviceState.DEGRADED
    assert reader.fault == status.slug
    assert pump(reader, 5) == []  # no exception storm, the fault just stays
    sim.sam_status = Status.OK
    sim.present(ADULT)
    pump_until(reader, is_read)
    assert reader.fault is None


def test_open_with_a_faulty_sam_is_degraded_not_offline(sim: SamReaderSim,
                                                       make_reader: Callable[..., SamCardReader]
                                                       ) -> None:
    sim.sam_status = Status.SAM_NOT_AUTHORIZED
    reader = make_reader()
    assert reader.fault == "sam_not_authorized"


@pytest.mark.parametrize(("status", "reason"), [
    (Status.CHECKSUM_ERROR, "checksum_error"), (Status.LENGTH_ERROR, "length_error"),
    (Status.BAD_COMMAND, "bad_command"), (0x55, "unknown_status")])
def test_link_level_and_unknown_status_are_protocol_errors(
        status: int, reason: str, sim: SamReaderSim, reader: SamCardReader) -> None:
    sim.sam_status = status  # type: ignore[assignment]
    e = error_of(reader)
    assert isinstance(e, ProtocolError) and e.reason == reason


def test_unplug_is_unavailable(sim: SamReaderSim, reader: SamCardReader) -> None:
    sim.unplug()
    assert isinstance(error_of(reader), DeviceUnavailable)


def test_supervised_reader_survives_unplug_and_replug(sim: SamReaderSim) -> None:
    seen: list[Observation] = []
    states: list[DeviceState] = []
    got = threading.Event()

    def on_obs(_: str, obs: Observation) -> None:
        seen.append(obs)
        got.set()

    runner = DeviceRunner("id_reader", lambda: SamCardReader("id_reader", config(sim.port)),
                          on_observation=on_obs,
                          on_state=lambda _n, _o, new, _r: states.append(new),
                          backoff=Backoff(initial_s=0.02, max_s=0.1))
    runner.start()
    try:
        assert wait_for_state(runner, DeviceState.READY, LIMIT_S)
        sim.unplug()
        assert wait_for_state(runner, DeviceState.OFFLINE, LIMIT_S)
        sim.replug()
        assert wait_for_state(runner, DeviceState.READY, LIMIT_S)
        sim.present(ADULT)
        assert got.wait(LIMIT_S)
        time.sleep(0.2)  # polls that must not repeat the read
        assert [type(o) for o in seen] == [IdCardRead]
    finally:
        runner.stop()
    assert DeviceState.OFFLINE in states


def test_supervised_sam_fault_is_degraded_then_ready(sim: SamReaderSim) -> None:
    runner = DeviceRunner("id_reader", lambda: SamCardReader("id_reader", config(sim.port)),
                          on_observation=lambda _n, _o: None,
                          on_state=lambda *_: None, backoff=Backoff(initial_s=0.02, max_s=0.1))
    runner.start()
    try:
        assert wait_for_state(runner, DeviceState.READY, LIMIT_S)
        sim.sam_status = Status.SAM_SELF_TEST_FAILED
        assert wait_for_state(runner, DeviceState.DEGRADED, LIMIT_S)
        assert "sam_self_test_failed" in runner.reason
        sim.sam_status = Status.OK
        assert wait_for_state(runner, DeviceState.READY, LIMIT_S)
    finally:
        runner.stop()
