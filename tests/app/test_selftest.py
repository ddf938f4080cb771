"""``gated selftest <device>`` against simulated devices: a gate is pulsed only after a yes, a
printer prints the test ticket, a reader shows a card's masked fields only, a camera its
frame and decode counts."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from drivers.sim.barrier_arm import Button
from drivers.sim.printer import PrinterSim
from drivers.sim.relay_board import RelayBoardSim
from drivers.sim.sam_reader import SamReaderSim
from gated.app.selftest import run_selftest
from gated.config import GatedConfig, parse_config
from tests.support.cards import ADULT

pytestmark = pytest.mark.timeout(60)
BASE = '[site]\nid = "demo"\n[booth]\nid = "b1"\n'


def config(tables: str) -> GatedConfig:
    return parse_config(BASE + tables)


def test_gate_is_pulsed_only_after_yes() -> None:
    with RelayBoardSim(travel_s=0.2) as sim:
        cfg = config(f'[devices.g]\ntype = "modbus_gate"\nport = "{sim.port}"\nzone = "hall"\n'
                     'pulse_ms = 100\nauto_close_s = 1\n')
        out = io.StringIO()
        assert run_selftest(cfg, "g", out=out, ask=lambda _q: "n") == 0
        assert sim.presses(Button.OPEN) == 0 and "not pulsed" in out.getvalue()
        questions: list[str] = []
        out = io.StringIO()
        assert run_selftest(cfg, "g", out=out,
                            ask=lambda q: questions.append(q) or "y") == 0
        assert sim.presses(Button.OPEN) == 1
        assert "host-timed" in questions[0]
        assert "OPEN pulsed" in out.getvalue() and "the open limit was reached" in out.getvalue()


def test_printer_prints_the_test_ticket(tmp_path: Path) -> None:
    with PrinterSim(tmp_path / "t") as sim:
        cfg = config(f'[devices.p]\ntype = "escpos_printer"\nport = "{sim.port}"\n'
                     'print_settle_ms = 20\n')
        out = io.StringIO()
        assert run_selftest(cfg, "p", out=out) == 0
        assert sim.wait_tickets(1, 5) and "测试票" in sim.tickets[0].text
        assert "confirmed" in out.getvalue()


def test_one_way_printer_says_it_cannot_confirm(tmp_path: Path) -> None:
    with PrinterSim(tmp_path / "t", one_way=True) as sim:
        cfg = config(f'[devices.p]\ntype = "escpos_printer"\nport = "{sim.port}"\n'
                     'status = "none"\n')
        out = io.StringIO()
        assert run_selftest(cfg, "p", out=out) == 0
        assert sim.wait_tickets(1, 5) and "cannot confirm" in out.getvalue()


def test_reader_shows_masked_fields_only() -> None:
    with SamReaderSim() as sim:
        cfg = config(f'[devices.r]\ntype = "sam_idcard"\nport = "{sim.port}"\n'
                     'poll_interval_ms = 20\n')
        out = io.StringIO()
        timer = threading.Timer(0.5, sim.present, (ADULT,))
        timer.start()
        try:
            assert run_selftest(cfg, "r", out=out, wait_s=10) == 0
        finally:
            timer.cancel()
        text = out.getvalue()
        assert "resident" in text and ADULT.id_number[-4:] in text
        assert ADULT.id_number not in text and ADULT.name not in text
        assert ADULT.name[0] + "*" in text


def test_camera_reports_frames_and_decodes(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    import numpy as np
    import qrcode
    img = np.array(qrcode.make("APPT-1").get_image().convert("L"))
    path = tmp_path / "qr.png"
    cv2.imwrite(str(path), img)
    cfg = config('[appointments]\nrequire_signed = false\n'
                 f'[devices.c]\ntype = "camera_qr"\nsource = "{path}"\nfps = 10\n')
    out = io.StringIO()
    assert run_selftest(cfg, "c", out=out, seconds=1.0) == 0
    assert "1 QR presentation(s) decoded" in out.getvalue(), out.getvalue()


def test_unknown_device() -> None:
    out = io.StringIO()
    assert run_selftest(config(""), "nope", out=out) == 2
