"""Printer transports (serial, /dev/usb/lp*, TCP 9100), one-way printers, encodings and
raster QR, against PrinterSim: what the printer renders is read back (text, and the QR code
from the rendered PNG with OpenCV's decoder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drivers.base import CommandDone, DeviceCommand, DeviceState
from drivers.escpos_printer.driver import EscposPrinter
from drivers.escpos_printer.encoding import TextEncoding
from drivers.registry import model_for
from drivers.sim.printer import PrinterSim
from drivers.supervisor import Backoff, DeviceRunner, wait_for_state
from gated.booth.ticket import ticket_document
from tests.drivers.escpos_printer.test_driver import decode_qr, gated_config, info
from tests.support.tcp_bridge import TcpBridge

pytestmark = pytest.mark.timeout(30)
LIMIT_S = 5.0


def printer(**over: Any) -> EscposPrinter:
    values: dict[str, Any] = dict(type="escpos_printer", status_interval_s=0.05,
                                  response_timeout_ms=100, print_settle_ms=20)
    values.update(over)
    model = model_for(values)
    assert model is not None
    return EscposPrinter("printer", model.model_validate(values))


def print_ticket(p: EscposPrinter, **ticket: Any) -> tuple[CommandDone, dict[str, Any]]:
    doc = ticket_document(gated_config(**ticket), info())
    out = list(p.execute(DeviceCommand("c1", "print", {"ticket": doc})))
    return next(o for o in out if isinstance(o, CommandDone)), doc


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "tickets"


def test_a_one_way_printer_prints_blind_and_shows_unknown(out_dir: Path) -> None:
    with PrinterSim(out_dir, one_way=True) as sim:
        states: list[str] = []
        runner = DeviceRunner("printer", lambda: printer(port=sim.port, status="none"),
                              on_observation=lambda *_: None,
                              on_state=lambda _n, _o, new, _r: states.append(str(new)),
                              backoff=Backoff(0.05, 0.1))
        runner.start()
        try:
            assert wait_for_state(runner, DeviceState.UNKNOWN, LIMIT_S), runner.reason
            assert "ready" not in states
        finally:
            runner.stop()
        p = printer(port=sim.port, status="none")
        p.open()
        try:
            done, doc = print_ticket(p)
            assert done == CommandDone("c1", True, "sent_unconfirmed")
            assert sim.wait_tickets(1, LIMIT_S)
            assert "社保医保" in sim.tickets[0].text and sim.status_requests == 0
        finally:
            p.close()


def test_without_status_none_a_one_way_printer_is_offline(out_dir: Path) -> None:
    with PrinterSim(out_dir, one_way=True) as sim:
        p = printer(port=sim.port)
        with pytest.raises(Exception, match="status replies"):
            p.open()
        p.close()


@pytest.mark.parametrize("status", ["dle_eot", "none"])
def test_usb_printer_class_device(out_dir: Path, status: str) -> None:
    """/dev/usb/lp* is a file, not a tty: the usblp transport opens the simulator's pty by
    path the same way (read and written as a plain character device, no termios)."""
    with PrinterSim(out_dir) as sim:
        p = printer(profile="usblp", device=sim.port, status=status)
        p.open()
        try:
            done, _ = print_ticket(p)
            assert done.ok and done.detail == ("printed" if status == "dle_eot"
                                               else "sent_unconfirmed")
            assert sim.wait_tickets(1, LIMIT_S)
            assert (sim.status_requests > 0) == (status == "dle_eot")
            assert p.blind == (status == "none")
        finally:
            p.close()


def test_network_printer_on_its_raw_port(out_dir: Path) -> None:
    with PrinterSim(out_dir) as sim, TcpBridge(sim.port) as bridge:
        p = printer(profile="tcp", host="127.0.0.1", tcp_port=bridge.port)
        p.open()
        try:
            assert p.poll(0.05) and p.fault is None  # the status came back over TCP
            done, _ = print_ticket(p)
            assert done == CommandDone("c1", True, "printed")
            assert sim.wait_tickets(1, LIMIT_S) and bridge.connections == 1
        finally:
            p.close()


def test_usblp_is_one_way_by_default() -> None:
    model = model_for({"type": "escpos_printer", "profile": "usblp"})
    assert model is not None
    assert model.model_validate({"type": "escpos_printer", "profile": "usblp"}).status_mode \
        == "none"


@pytest.mark.parametrize(("encoding", "fs_and", "printer_enc", "at_init"), [
    ("gb18030", True, TextEncoding.GB18030, False),  # GB18030 printer, needs FS &
    ("gbk", True, TextEncoding.GBK, False),
    ("gbk", False, TextEncoding.GBK, True),  # in Chinese mode from power-on: no FS & needed
    ("utf-8", False, TextEncoding.UTF8, False),  # UTF-8 printer: FS & must not be sent
])
def test_each_encoding_prints_chinese(out_dir: Path, encoding: str, fs_and: bool,
                                      printer_enc: TextEncoding, at_init: bool) -> None:
    with PrinterSim(out_dir, encoding=printer_enc, chinese_at_init=at_init) as sim:
        p = printer(port=sim.port, encoding=encoding, chinese_mode=fs_and)
        p.open()
        try:
            done, _ = print_ticket(p, first_responder="首问负责台（东门）")
            assert done.ok
            assert sim.wait_tickets(1, LIMIT_S)
            lines = sim.tickets[0].text.splitlines()
            assert "青山镇便民服务中心" in lines and "社保医保" in lines
            assert "如有疑问请到 首问负责台（东门）" in lines
        finally:
            p.close()


def test_fs_and_garbles_a_utf8_printer(out_dir: Path) -> None:
    """Why chinese_mode defaults off for utf-8: FS & would put the printer in GB mode."""
    with PrinterSim(out_dir, encoding=TextEncoding.UTF8) as sim:
        p = printer(port=sim.port, encoding="utf-8", chinese_mode=True)
        p.open()
        try:
            assert print_ticket(p)[0].ok and sim.wait_tickets(1, LIMIT_S)
            assert "社保医保" not in sim.tickets[0].text
        finally:
            p.close()


@pytest.mark.parametrize("paper", [80, 58])
def test_raster_qr_decodes_from_the_printed_ticket(out_dir: Path, paper: int) -> None:
    with PrinterSim(out_dir, columns=48 if paper == 80 else 32) as sim:
        p = printer(port=sim.port, qr="raster", paper_mm=paper)
        p.open()
        try:
            done, doc = print_ticket(p)
            assert done.ok and sim.wait_tickets(1, LIMIT_S)
            ticket = sim.tickets[0]
            assert "[QR]" not in ticket.text  # no native QR command was sent ...
            assert "[IMAGE" in ticket.text  # ... an image was
            assert ticket.png is not None and decode_qr(ticket.png) == doc["rating_url"]
            width = int(ticket.text.split("[IMAGE ")[1].split("x")[0])
            assert width <= (576 if paper == 80 else 384)
        finally:
            p.close()


def test_58mm_paper_gets_32_columns(out_dir: Path) -> None:
    with PrinterSim(out_dir, columns=32) as sim:
        p = printer(port=sim.port, paper_mm=58)
        p.open()
        try:
            assert print_ticket(p)[0].ok and sim.wait_tickets(1, LIMIT_S)
            rule = [ln for ln in sim.tickets[0].text.splitlines() if set(ln) == {"-"}]
            assert rule and all(len(r) == 32 for r in rule)
        finally:
            p.close()
