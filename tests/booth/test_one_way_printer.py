"""A one-way printer under the real daemon: ``gated run`` with a printer that never answers a
status request, configured ``status = "none"``. It is never refused: the status shows it as
``unknown`` (not ``ready``), a card tap prints its ticket blind, and the ticket counts as
printed (there is nothing to confirm it with)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from gated.app.simulate import SimBooth
from tests.support.booth import gated
from tests.support.cards import ADULT
from tests.support.daemon import DaemonProcess
from tests.support.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def _events(sim: SimBooth, kind: str) -> list[dict[str, object]]:
    path = sim.directory / "state" / "gated.db"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            rows = db.execute("SELECT body FROM events WHERE type = ?", (kind,)).fetchall()
        except sqlite3.OperationalError:
            return []
    return [json.loads(r[0])["data"] for r in rows]


def _printer_state(cfg: Path) -> str | None:
    out = gated("status", "-c", str(cfg))
    if out.returncode:
        return None
    return str(json.loads(out.stdout)["status"]["devices"]["printer"]["state"])


def test_one_way_printer_prints_blind_and_is_shown_unknown(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    with SimBooth(tmp_path / "sim", mqtt="off") as sim:
        sim.printer.silent = True  # never answers DLE EOT, like a cheap one-way printer
        text = sim.config_path.read_text(encoding="utf-8")
        sim.config_path.write_text(text.replace('type = "escpos_printer"\n',
                                                'type = "escpos_printer"\nstatus = "none"\n'),
                                   encoding="utf-8")
        with DaemonProcess(sim.config_path, tmp_path / "run") as d:
            d.wait_for("READY=1")
            wait_for(lambda: _printer_state(sim.config_path) == "unknown", 20,
                     "the printer shown unknown")
            sim.reader.present(ADULT)
            assert sim.printer.wait_tickets(1, 20), d.log_tail()
            printed = wait_for(lambda: _events(sim, "ticket.printed"), 10, "ticket.printed")
            assert printed[0]["number"] in sim.printer.tickets[0].text
            assert not _events(sim, "ticket.reprint")
            assert sim.printer.status_requests == 0  # never asked
            assert d.terminate() == 0
