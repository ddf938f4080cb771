"""A ticket left unconfirmed by a crash prints by itself after the restart, whichever comes
first, the printer's READY or the recovery: a real ``gated run`` killed with SIGKILL while the
printer is still working on the ticket."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from gated.app.simulate import SimBooth
from tests.support.booth import devices_ready
from tests.support.cards import ADULT
from tests.support.daemon import DaemonProcess
from tests.support.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _issued(sim: SimBooth) -> list[str]:
    path = sim.directory / "state" / "gated.db"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            rows = db.execute("SELECT body FROM events WHERE type = 'ticket.issued'").fetchall()
        except sqlite3.OperationalError:
            return []
    return [json.loads(r[0])["data"]["number"] for r in rows]


@pytest.mark.parametrize("printer_first", [True, False],
                         ids=["printer-ready-first", "recovery-first"])
@pytest.mark.parametrize("kill_at", ["before-bytes", "after-bytes"])
def test_an_unconfirmed_ticket_prints_itself_after_a_crash(
        tmp_path: Path, printer_first: bool, kill_at: str) -> None:
    for run in ("run1", "run2"):
        (tmp_path / run).mkdir()
    with SimBooth(tmp_path / "sim", mqtt="off") as sim:
        with DaemonProcess(sim.config_path, tmp_path / "run1") as d:
            d.wait_for("READY=1")
            wait_for(lambda: devices_ready(sim.config_path), 20, "devices ready")
            # the printer checks its status before a ticket's bytes: slow it down so the kill
            # lands after the commit and before any byte (or, later, before the confirmation)
            sim.printer.reply_delay_s = 0.4
            sim.reader.present(ADULT)
            (number,) = wait_for(lambda: _issued(sim), 10, "the ticket committed")
            if kill_at == "after-bytes":
                wait_for(lambda: sim.printer.tickets, 10, "the ticket's bytes")
            d.kill()  # SIGKILL: no chance to confirm anything
            sim.reader.remove()
        before = len(sim.printer.tickets)
        assert before == (0 if kill_at == "before-bytes" else 1)
        sim.printer.reply_delay_s = 0.0
        sim.printer.silent = not printer_first  # not ready until after the recovery ran
        with DaemonProcess(sim.config_path, tmp_path / "run2") as d:
            d.wait_for("READY=1")
            if not printer_first:
                wait_for(lambda: "unconfirmed_at_restart" in d.log_path.read_text(
                    errors="replace") or _reprint_filed(sim), 10, "the recovery")
                sim.printer.silent = False
            assert sim.printer.wait_tickets(before + 1, 20), "the ticket never printed itself"
            reprinted = sim.printer.tickets[before].text
            assert number in reprinted and "补打" in reprinted
            assert d.terminate() == 0
        assert len(sim.printer.tickets) == before + 1  # once, no visitor needed


def _reprint_filed(sim: SimBooth) -> bool:
    path = sim.directory / "state" / "gated.db"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return bool(db.execute("SELECT count(*) FROM b_prints WHERE reason = "
                               "'unconfirmed_at_restart'").fetchone()[0])
