"""One person, one place in the queue: a visitor whose ticket still waits and who taps again
gets a reminder slip of their number, across a restart; a service may allow several."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from drivers.sim.barrier_arm import Button
from gated.app.daemon import Daemon
from gated.app.simulate import SimBooth
from gated.config import load_config
from tests.support.cards import ADULT
from tests.support.polling import wait_for

pytestmark = pytest.mark.timeout(90)


def _events(d: Daemon, etype: str) -> list[dict[str, Any]]:
    assert d.store is not None
    conn = d.store.reader()
    try:
        rows = conn.execute("SELECT body FROM events WHERE type = ? ORDER BY seq",
                            (etype,)).fetchall()
    finally:
        conn.close()
    return [json.loads(r[0])["data"] for r in rows]


def _tap_and_wait(sim: SimBooth, d: Daemon, etype: str, count: int) -> list[dict[str, Any]]:
    sim.reader.present(ADULT)
    try:
        return wait_for(lambda: len(_events(d, etype)) >= count and _events(d, etype), 10, etype)
    finally:
        sim.reader.remove()
        time.sleep(0.6)  # off the reader for more than a poll: the next tap is a new one


def _daemon(sim: SimBooth) -> Daemon:
    d = Daemon(load_config(sim.config_path), config_path=sim.config_path)
    d.start()
    assert d.devices is not None
    wait_for(lambda: all(s["state"] == "ready" for s in d.devices.snapshot().values()), 15)
    return d


def test_tapping_again_reminds_of_the_waiting_number_across_a_restart(tmp_path: Path) -> None:
    with SimBooth(tmp_path / "sim", mqtt="off") as sim:
        d = _daemon(sim)
        try:
            (issued,) = _tap_and_wait(sim, d, "ticket.issued", 1)
            assert sim.printer.wait_tickets(1, 10)
        finally:
            d.stop()
        d = _daemon(sim)  # the visitor steps out; the booth restarts meanwhile
        try:
            (reminded,) = _tap_and_wait(sim, d, "ticket.reminded", 1)
            assert reminded["number"] == issued["number"] == "A001"
            assert reminded["printed"] is True and reminded["ahead"] == 0
            assert sim.printer.wait_tickets(2, 10)
            slip = sim.printer.tickets[1].text
            assert "A001" in slip and "仍有效" in slip and "前面还有 0 人" in slip
            assert len(_events(d, "ticket.issued")) == 1  # no second number
            assert sim.hall.presses(Button.OPEN) == 2  # let in both times
            assert d.status()["queue"]["waiting"] == 1
            d.dispatch_local("call_next", {"counter": "1"})
            d.dispatch_local("served", {"counter": "1"})
            again = _tap_and_wait(sim, d, "ticket.issued", 2)[-1]  # served: a new matter
            assert again["number"] == "A002"
        finally:
            d.stop()


def test_a_service_that_allows_several_matters_gives_a_new_number(tmp_path: Path) -> None:
    with SimBooth(tmp_path / "sim", mqtt="off") as sim:
        text = sim.config_path.read_text(encoding="utf-8")
        sim.config_path.write_text(text.replace('name = "综合窗口"\nprefix = "A"\n',
                                                'name = "综合窗口"\nprefix = "A"\n'
                                                'one_waiting_ticket = false\n'), encoding="utf-8")
        d = _daemon(sim)
        try:
            _tap_and_wait(sim, d, "ticket.issued", 1)
            numbers = [e["number"] for e in _tap_and_wait(sim, d, "ticket.issued", 2)]
            assert numbers == ["A001", "A002"] and not _events(d, "ticket.reminded")
        finally:
            d.stop()
