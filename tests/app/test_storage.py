"""A real ``gated run`` whose state directory is a small tmpfs that fills up: the public hall
is held open while nothing can be recorded, the status says why, and when space returns
service resumes by itself with one event for the outage and no gap in the numbering."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from drivers.sim.barrier_arm import Button
from gated.app.simulate import SimBooth
from tests.support.booth import devices_ready, gated
from tests.support.cards import ADULT
from tests.support.daemon import DaemonProcess
from tests.support.polling import wait_for
from tests.support.tmpfs import tmpfs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _status(sim: SimBooth) -> tuple[int, dict[str, Any]]:
    out = gated("status", "-c", str(sim.config_path))
    return out.returncode, json.loads(out.stdout)["status"] if out.stdout else {}


def _tap(sim: SimBooth) -> None:
    sim.reader.present(ADULT)
    time.sleep(0.6)  # the reader polls every 250 ms; the card lies there a moment
    sim.reader.remove()
    time.sleep(0.3)


def _fill(path: Path) -> None:
    # Unbuffered: a buffered file keeps the part of the last chunk that did not fit and its
    # close() raises ENOSPC again, outside the suppress (whenever the free space is not a
    # multiple of the chunk).
    with open(path, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)


def test_a_full_disk_holds_the_hall_open_and_service_resumes(tmp_path: Path) -> None:
    with SimBooth(tmp_path / "sim", mqtt="off") as sim, \
            tmpfs(sim.directory / "state", "size=3m") as state:
        with DaemonProcess(sim.config_path, tmp_path) as d:
            d.wait_for("READY=1")
            wait_for(lambda: devices_ready(sim.config_path), 20, "devices ready")
            assert _status(sim)[1]["state"] == "online"
            _fill(state / "filler")  # the SD card fills up with something else
            for _ in range(30):  # visitors come; SQLite writes into its WAL until it must grow
                _tap(sim)
                if _status(sim)[1].get("storage_ok") is False:
                    break
            rc, st = _status(sim)
            assert rc == 1 and st["state"] == "faulted"
            assert [p["kind"] for p in st["problems"]] == ["storage"]
            assert st["problems"][0]["reason"] == "disk_full"
            # the public hall is held open, visitor or not; the office is not
            wait_for(lambda: "storage_failed_gates_held_open" in d.log_path.read_text(
                errors="replace"), 10, "the hall held open")
            printed = len(sim.printer.tickets)
            _tap(sim)  # cannot be recorded: no ticket, but the hall stays open
            wait_for(lambda: sim.hall.position() > 0.95, 10, "the hall gate open")
            assert sim.office.presses(Button.OPEN) == 0
            assert len(sim.printer.tickets) == printed
            (state / "filler").unlink()  # IT frees space
            wait_for(lambda: _status(sim)[0] == 0, 20, "service resumes")
            assert "storage_recovered_gates_released" in d.log_path.read_text(errors="replace")
            _tap(sim)
            assert sim.printer.wait_tickets(printed + 1, 20)
            assert d.terminate() == 0
        db = sqlite3.connect(state / "gated.db")
        rows = [(seq, json.loads(body)) for seq, body in
                db.execute("SELECT seq, body FROM events ORDER BY seq")]
        db.close()
        seqs = [s for s, _ in rows]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap: nothing to explain
        (outage,) = [e["data"] for _, e in rows if e["type"] == "storage.error"]
        assert outage["state"] == "recovered" and outage["reason"] == "disk_full"
        assert outage["failed_for_s"] > 0 and outage["dropped_jobs"] >= 1
