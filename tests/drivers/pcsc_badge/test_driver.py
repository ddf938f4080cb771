"""PcscBadgeReader on the real stack: pcscd + vsmartcard's vpcd driver + a virtual card over TCP.

Nothing is mocked between the driver and the card: pyscard talks to a pcscd started by the
fixture, vpcd forwards APDUs to ``tests.support.vpcd_card.VirtualCard``. pcscd checks card
presence on its own schedule (a few times a second), so every wait below is "until it happens,
or fail after a generous limit".
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial

import pytest

from drivers.base import (
    BadgeRead,
    DependencyMissing,
    DeviceState,
    DeviceUnavailable,
    Observation,
    UnreadableCard,
)
from drivers.pcsc_badge.driver import PcscBadgeReader
from drivers.pcsc_badge.settings import PcscReaderConfig
from drivers.supervisor import Backoff, DeviceRunner, wait_for_state
from gated.app.logs import configure_logging, shutdown_logging
from gated.config import LogFormat, LogLevel
from tests.support import polling
from tests.support.devices import device_factory
from tests.support.pcscd import READER_0, Pcscd, binaries_missing, pcscd_service
from tests.support.polling import wait_for
from tests.support.vpcd_card import (
    ATR_CLASSIC_1K,
    ATR_CLASSIC_4K,
    ATR_DESFIRE,
    ATR_ISO14443_4,
    ATR_ULTRALIGHT,
    ATR_UNKNOWN,
    VirtualCard,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

LIMIT_S = 5.0
pump = polling.pump
pump_until = partial(polling.pump_until, limit=LIMIT_S)
UID_A = bytes.fromhex("04A1B2C3D4E5F6")
UID_B = bytes.fromhex("DEADBEEF")


@pytest.fixture(scope="module")
def pcscd() -> Iterator[Pcscd]:
    why = binaries_missing()
    if why is not None:
        pytest.skip(f"real PC/SC stack unavailable: {why}")
    with pcscd_service() as service:
        yield service


@pytest.fixture
def owned_pcscd(pcscd: Pcscd) -> Iterator[Pcscd]:
    """The tests that stop pcscd; they leave it running with the vpcd reader."""
    if not pcscd.owned:
        pytest.skip(f"pcscd pid {pcscd.pid} was not started by these tests; not restarting it")
    yield pcscd
    if pcscd.readers() is None or READER_0 not in (pcscd.readers() or []):
        pcscd.restart()


@pytest.fixture
def make_card(pcscd: Pcscd) -> Iterator[Callable[..., VirtualCard]]:
    made: list[VirtualCard] = []

    def make(**kwargs: object) -> VirtualCard:
        card = VirtualCard(pcscd.port, **kwargs)  # type: ignore[arg-type]
        made.append(card)
        return card

    yield make
    for card in made:
        card.remove()


@pytest.fixture
def make_reader(pcscd: Pcscd) -> Iterator[Callable[..., PcscBadgeReader]]:
    with device_factory(lambda reader=READER_0: PcscBadgeReader("badge1", config(reader))
                        ) as make:
        yield make


def config(reader: str = READER_0) -> PcscReaderConfig:
    return PcscReaderConfig.model_validate(
        {"type": "pcsc_badge", "reader": reader, "poll_interval_ms": 50})


def pump_until_empty(drv: PcscBadgeReader) -> list[Observation]:
    out: list[Observation] = []
    end = time.monotonic() + LIMIT_S
    while drv.card_present:
        assert time.monotonic() < end, "the driver never saw the card leave"
        out += drv.poll(0.05)
    return out


def is_badge(o: Observation) -> bool:
    return isinstance(o, BadgeRead)


def badges(obs: list[Observation]) -> list[BadgeRead]:
    return [o for o in obs if isinstance(o, BadgeRead)]


# --------------------------------------------------------------------------- presentations


def test_insert_reads_uid_and_type_once(make_reader: Callable[..., PcscBadgeReader],
                                        make_card: Callable[..., VirtualCard]) -> None:
    drv = make_reader()
    assert drv.reader_name == READER_0
    assert pump(drv, 0.3) == []
    card = make_card(atr=ATR_CLASSIC_1K, uid=UID_A)
    card.insert()
    out = pump_until(drv, is_badge)
    out += pump(drv, 1.0)  # the card stays on the reader: still one presentation
    assert badges(out) == [BadgeRead(uid="04A1B2C3D4E5F6", card_type="mifare_classic_1k",
                                     reader=READER_0)]
    assert [o for o in out if not is_badge(o)] == []
    assert bytes.fromhex("FFCA000000") in card.log.apdus


def test_remove_and_the_same_card_again_is_a_second_presentation(
        make_reader: Callable[..., PcscBadgeReader],
        make_card: Callable[..., VirtualCard]) -> None:
    drv = make_reader()
    card = make_card(uid=UID_B)
    card.insert()
    first = pump_until(drv, is_badge)
    card.remove()
    gone = pump_until_empty(drv)
    assert gone == []  # a removal is not an observation
    card.insert()
    second = pump_until(drv, is_badge)
    assert [b.uid for b in badges(first + second)] == ["DEADBEEF", "DEADBEEF"]


def test_lifted_and_put_back_between_polls_still_counts_twice(
        pcscd: Pcscd, make_reader: Callable[..., PcscBadgeReader],
        make_card: Callable[..., VirtualCard]) -> None:
    drv = make_reader()
    card = make_card(uid=UID_A)
    card.insert()
    pump_until(drv, is_badge)
    card.remove()
    wait_pcscd_sees(pcscd, present=False)  # the driver does not poll meanwhile
    card.insert()
    wait_pcscd_sees(pcscd, present=True)
    assert drv.card_present  # its last view: present, but the insertion counter moved
    assert [b.uid for b in badges(pump_until(drv, is_badge))] == ["04A1B2C3D4E5F6"]


def test_two_cards_in_a_row(make_reader: Callable[..., PcscBadgeReader],
                            make_card: Callable[..., VirtualCard]) -> None:
    drv = make_reader()
    a = make_card(atr=ATR_CLASSIC_4K, uid=UID_A)
    b = make_card(atr=ATR_DESFIRE, uid=bytes.fromhex("0455667788AABB"))
    a.insert()
    out = pump_until(drv, is_badge)
    a.remove()
    out += pump_until_empty(drv)
    b.insert()
    out += pump_until(drv, lambda o: is_badge(o) and o.uid != "04A1B2C3D4E5F6")  # type: ignore
    assert [(x.uid, x.card_type) for x in badges(out)] == [
        ("04A1B2C3D4E5F6", "mifare_classic_4k"), ("0455667788AABB", "desfire")]


@pytest.mark.timeout(60)
def test_card_types_from_the_atr(make_reader: Callable[..., PcscBadgeReader],
                                 make_card: Callable[..., VirtualCard]) -> None:
    drv = make_reader()
    seen = []
    for atr in (ATR_ULTRALIGHT, ATR_ISO14443_4, ATR_UNKNOWN):
        card = make_card(atr=atr, uid=UID_B)
        card.insert()
        seen += badges(pump_until(drv, is_badge))
        card.remove()
        pump_until_empty(drv)
    assert [b.card_type for b in seen] == ["ultralight", "iso14443_4", "unknown"]
    assert {b.uid for b in seen} == {"DEADBEEF"}


def test_card_refusing_the_uid_command_is_unreadable(
        make_reader: Callable[..., PcscBadgeReader],
        make_card: Callable[..., VirtualCard]) -> None:
    drv = make_reader()
    card = make_card(refuse_uid=True)
    card.insert()
    out = pump_until(drv, lambda o: isinstance(o, UnreadableCard))
    out += pump(drv, 0.5)
    assert out == [UnreadableCard("uid_refused_6A81")]
    assert bytes.fromhex("FFCA000000") in card.log.apdus


def test_card_already_on_the_reader_at_open_is_not_reported(
        pcscd: Pcscd, make_reader: Callable[..., PcscBadgeReader],
        make_card: Callable[..., VirtualCard]) -> None:
    card = make_card(uid=UID_A)
    card.insert()
    wait_pcscd_sees(pcscd, present=True)
    drv = make_reader()
    assert drv.card_present
    assert pump(drv, 0.5) == []
    card.remove()
    pump_until_empty(drv)
    card.insert()
    assert [b.uid for b in badges(pump_until(drv, is_badge))] == ["04A1B2C3D4E5F6"]


@pytest.mark.parametrize("fmt", [LogFormat.JSON, LogFormat.CONSOLE])
def test_log_lines_carry_only_a_masked_uid(make_reader: Callable[..., PcscBadgeReader],
                                          make_card: Callable[..., VirtualCard],
                                          fmt: LogFormat) -> None:
    buf = io.StringIO()
    configure_logging(LogLevel.DEBUG, fmt, stream=buf)
    try:
        drv = make_reader()
        make_card(uid=UID_A).insert()
        pump_until(drv, is_badge)
    finally:
        shutdown_logging()
    text = buf.getvalue()
    assert "badge_read" in text and "04A1**********" in text
    assert "B2C3D4E5F6" not in text.upper()


# --------------------------------------------------------------------------- readers, pcscd


def test_no_matching_reader_is_unavailable(make_reader: Callable[..., PcscBadgeReader]) -> None:
    drv = make_reader("No Such Reader", open_it=False)
    with pytest.raises(DeviceUnavailable) as err:
        drv.open()
    assert err.value.reason == "no_reader"


def test_first_reader_never_picks_a_virtual_one(
        make_reader: Callable[..., PcscBadgeReader]) -> None:
    drv = make_reader("", open_it=False)  # only vpcd's readers exist here
    with pytest.raises(DeviceUnavailable) as err:
        drv.open()
    assert err.value.reason == "no_reader"


def test_reader_substring_selects_the_second_slot(
        pcscd: Pcscd, make_reader: Callable[..., PcscBadgeReader]) -> None:
    drv = make_reader("PCD 00 01")
    assert drv.reader_name == "Virtual PCD 00 01"
    card = VirtualCard(pcscd.port + 1, uid=UID_B)
    with card:
        assert [b.reader for b in badges(pump_until(drv, is_badge))] == ["Virtual PCD 00 01"]


def test_pyscard_missing_disables_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("smartcard", "smartcard.scard"):  # as if never installed
        monkeypatch.setitem(sys.modules, module, None)
    drv = PcscBadgeReader("badge1", config())
    with pytest.raises(DependencyMissing):
        drv.open()
    drv.close()


@pytest.mark.timeout(45)
def test_pcscd_restart_under_the_supervisor(owned_pcscd: Pcscd,
                                            make_card: Callable[..., VirtualCard]) -> None:
    seen: list[Observation] = []
    states: list[DeviceState] = []
    runner = DeviceRunner(
        "badge1", lambda: PcscBadgeReader("badge1", config()),
        on_observation=lambda _name, obs: seen.append(obs),
        on_state=lambda _name, _old, new, _reason: states.append(new),
        backoff=Backoff(initial_s=0.1, max_s=0.5))
    runner.start()
    try:
        assert wait_for_state(runner, DeviceState.READY, LIMIT_S)
        card = make_card(uid=UID_A)
        card.insert()
        wait_for(lambda: len(badges(seen)) == 1, LIMIT_S)
        owned_pcscd.stop()
        assert wait_for_state(runner, DeviceState.OFFLINE, LIMIT_S)
        assert runner.reason.startswith("pcsc_")
        wait_for(lambda: not card.inserted, LIMIT_S)  # vpcd went away with pcscd: card off
        owned_pcscd.start()
        assert wait_for_state(runner, DeviceState.READY, 10.0)
        card.remove()
        card.insert()
        wait_for(lambda: len(badges(seen)) == 2, LIMIT_S)
    finally:
        runner.stop()
    offline = states.index(DeviceState.OFFLINE)
    assert DeviceState.READY in states[:offline] and DeviceState.READY in states[offline:]
    assert [b.uid for b in badges(seen)] == ["04A1B2C3D4E5F6"] * 2


@pytest.mark.timeout(45)
def test_reader_absent_then_back(owned_pcscd: Pcscd,
                                 make_reader: Callable[..., PcscBadgeReader]) -> None:
    drv = make_reader()
    owned_pcscd.restart(vpcd=False)  # pcscd runs, but the vpcd reader is gone
    with pytest.raises(DeviceUnavailable):
        drv.poll(0.05)
    drv.close()
    with pytest.raises(DeviceUnavailable) as err:
        make_reader(open_it=False).open()
    assert err.value.reason in ("no_reader", "pcsc_8010002E")
    owned_pcscd.stop()  # no pcscd at all
    with pytest.raises(DeviceUnavailable) as err:
        make_reader(open_it=False).open()
    assert err.value.reason == "pcsc_8010001D"  # SCARD_E_NO_SERVICE
    owned_pcscd.start()
    assert make_reader().reader_name == READER_0


# --------------------------------------------------------------------------- helpers


def wait_pcscd_sees(pcscd: Pcscd, *, present: bool) -> None:
    """Wait until pcscd itself reports the card on/off reader 0 (its own presence polling)."""
    from smartcard import scard

    rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert rc == scard.SCARD_S_SUCCESS
    try:
        end = time.monotonic() + LIMIT_S
        while True:
            rc, states = scard.SCardGetStatusChange(
                ctx, 0, [(READER_0, scard.SCARD_STATE_UNAWARE)])
            assert rc == scard.SCARD_S_SUCCESS
            if bool(states[0][1] & scard.SCARD_STATE_PRESENT) == present:
                return
            assert time.monotonic() < end, f"pcscd never saw present={present}"
            time.sleep(0.02)
    finally:
        scard.SCardReleaseContext(ctx)
