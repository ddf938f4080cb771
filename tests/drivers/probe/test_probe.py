"""``gated probe`` against simulated devices on ptys: a SAM module at a non-default speed, an
ESC/POS printer, a coil board (the project's simulator) and, with pymodbus as the board, a
Waveshare V2 and an R4D3B16 relay board with its N4D3E16 input board on one line. It finds
each, prints tables ``gated check-config --no-files`` accepts, and never writes: no Modbus
write is sent, no relay switches, nothing prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from drivers.probe import Kind, config_sections, run_probe
from drivers.sim.printer import PrinterSim
from drivers.sim.relay_board import RelayBoardSim
from drivers.sim.sam_reader import SamReaderSim
from drivers.sim.sam_usb import SamUsbBackend
from gated.config import parse_config
from tests.support.modbus_boards import PymodbusBoard

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def gated(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gated.app.cli", *args], capture_output=True,
                          text=True, timeout=90)


def test_probe_finds_every_simulated_device(tmp_path: Path) -> None:
    with SamReaderSim() as sam, PrinterSim(tmp_path / "tickets") as printer, \
            RelayBoardSim(address=3) as coil, PymodbusBoard("waveshare_v2", address=5) as ws, \
            PymodbusBoard("r4d3b16", address=1, input_address=2) as r4:
        sam.baudrate = 38400
        out = tmp_path / "probe.toml"
        ports = [sam.port, printer.port, coil.port, ws.port, r4.port]
        done = gated("probe", *[a for p in ports for a in ("--port", p)], "--modbus-ids",
                     "1-6", "--no-usb", "--camera", str(tmp_path / "none.png"), "-o", str(out))
        assert done.returncode == 0, done.stderr
        report = done.stderr
        assert f"{sam.port}: GA/T 467 SAM module at 38400 baud, SAM healthy" in report
        assert f"{printer.port}: ESC/POS printer answering DLE EOT at 9600 baud" in report
        assert f"{coil.port}: Modbus slave 3 at 9600 baud: coil" in report
        assert f"{ws.port}: Modbus slave 5 at 9600 baud: waveshare_v2 v2.00" in report
        assert f"{r4.port}: Modbus slave 1 at 9600 baud: r4d3b16" in report
        text = out.read_text(encoding="utf-8")
        cfg = parse_config(text)  # what check-config --no-files runs
        checked = gated("check-config", "--no-files", str(out))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        devices = {d.type_name() + ":" + getattr(d, "profile", ""): d
                   for d in cfg.devices.values()}
        assert devices["sam_idcard:serial"].baudrate == 38400
        r4_table = devices["modbus_gate:r4d3b16"]
        assert r4_table.inputs_address == 2 and r4_table.address == 1
        assert devices["modbus_gate:waveshare_v2"].address == 5
        assert devices["modbus_gate:coil"].address == 3
        assert devices["escpos_printer:serial"].port == printer.port
        # read-only: only FC01-FC04 reached the boards; no relay moved, nothing printed
        for board in (ws, r4):
            assert {fc for _, fc, _, _ in board.model.requests} <= {1, 2, 3, 4}
            assert not board.model.log
        assert not coil.relay_log and not printer.tickets


def test_probe_lists_a_usb_reader_with_its_table() -> None:
    findings = run_probe([], usb_backend=SamUsbBackend(), cameras=[])
    usb = [f for f in findings if f.kind is Kind.SAM]
    assert usb and usb[0].settings == {"profile": "usb", "usb_id": "0400:c35a"}
    cfg = parse_config(config_sections(findings))
    (reader,) = cfg.devices.values()
    assert reader.profile == "usb"


def test_probe_reports_a_camera_image(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    import numpy as np
    img = tmp_path / "frame.png"
    cv2.imwrite(str(img), np.full((48, 64, 3), 255, dtype=np.uint8))
    findings = run_probe([], usb=False, cameras=[str(img)])
    assert [f.summary for f in findings] == ["camera gives frames"]
    parse_config(config_sections(findings))
