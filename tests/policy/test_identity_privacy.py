"""No name or full ID number in any log line, repr or error of the ID card path.

Runs the real chain (simulator on a pty -> SamCardReader -> gated.policy.identity) for every test
card, malformed cards and link faults, with structlog at DEBUG writing JSON and console lines, and
greps everything for ``PERSONAL_STRINGS`` (also in the \\uXXXX form a JSON encoder could use).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from drivers.base import DeviceError, IdCardRead, Observation, UnreadableCard
from drivers.sam_idcard.driver import SamCardReader
from drivers.sam_idcard.settings import SamReaderConfig
from drivers.sim.sam_cards import RawCard, ResidentCard, SimCard
from drivers.sim.sam_reader import SamFault, SamReaderSim
from gated.app.logs import configure_logging, shutdown_logging
from gated.config import LogFormat, LogLevel
from gated.policy.identity import credential_from_card
from tests.support.cards import ADULT, BAD_CHECK_NUMBER, PERSONAL_STRINGS, TEST_CARDS

pytestmark = pytest.mark.timeout(60)
KEY = bytes(range(32))


def _needles() -> list[str]:
    out = []
    for s in PERSONAL_STRINGS:
        out += [s, json.dumps(s)[1:-1]]
    return list(dict.fromkeys(out))


def _cards() -> list[SimCard]:
    bad_date = bytearray(ADULT.text_block())
    bad_date[36:52] = "19800231".encode("utf-16-le")
    bad_check = ResidentCard(name="测试甲", id_number=BAD_CHECK_NUMBER, gender_code="1",
                             birth=date(1980, 1, 1), valid_from=date(2015, 3, 1),
                             valid_to=date(2035, 3, 1))
    return [*TEST_CARDS.values(), RawCard(bytes(bad_date)), bad_check]


@pytest.fixture(params=[LogFormat.JSON, LogFormat.CONSOLE])
def captured(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    buf = io.StringIO()
    configure_logging(LogLevel.DEBUG, request.param, site="demo", booth="b1", stream=buf)
    yield buf
    shutdown_logging()


def _read_all(reader: SamCardReader, sim: SamReaderSim, card: SimCard) -> list[Observation]:
    sim.present(card)
    out: list[Observation] = []
    for _ in range(40):
        out += reader.poll(0.05)
        if out:
            break
    for _ in range(3):
        out += reader.poll(0.05)
    sim.remove()
    for _ in range(3):
        out += reader.poll(0.05)
    return out


def test_no_personal_data_in_logs_reprs_or_errors(captured: io.StringIO,
                                                  tmp_path: Path) -> None:
    texts: list[str] = []
    observations: list[Observation] = []
    with SamReaderSim(link=str(tmp_path / "ttySAM")) as sim:
        cfg = SamReaderConfig(type="sam_idcard", port=sim.port, poll_interval_ms=20,
                              find_timeout_ms=50, read_timeout_ms=500)
        reader = SamCardReader("id_reader", cfg)
        reader.open()
        try:
            for fault in (SamFault.NONE, SamFault.NOISE_PREFIX):
                sim.fault, sim.split = fault, fault != SamFault.NONE
                for card in _cards():
                    observations += _read_all(reader, sim, card)
            # errors raised mid-read carry messages too: a corrupted read reply
            sim.fault = SamFault.BAD_CHECKSUM
            sim.present(ADULT)
            for _ in range(10):
                try:
                    reader.poll(0.05)
                except DeviceError as e:
                    texts += [str(e), repr(e)]
                    break
            sim.fault = SamFault.NONE
            sim.remove()
        finally:
            reader.close()
    reads = [o for o in observations if isinstance(o, IdCardRead)]
    # every card read once per presentation; the bad check digit is the core's to refuse
    assert len(reads) == 2 * (len(TEST_CARDS) + 1)
    assert [o for o in observations if isinstance(o, UnreadableCard)]
    assert texts, "the corrupted reply raised nothing"
    for o in observations:
        texts.append(repr(o))
        if isinstance(o, IdCardRead):
            result = credential_from_card(o, KEY, date(2025, 6, 1))
            texts += [repr(result), str(result)]
            if not isinstance(result, UnreadableCard):
                texts.append(json.dumps(result.public(), ensure_ascii=False))
    shutdown_logging()
    log_text = captured.getvalue()
    assert "card_read" in log_text and "card_unreadable" in log_text  # logging did happen
    haystack = "\n".join([log_text, *texts])
    leaks = [s for s in _needles() if s in haystack]
    assert not leaks, f"personal data leaked: {leaks}"
