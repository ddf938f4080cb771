"""EscposPrinter against PrinterSim over a real pty: real ESC/POS bytes both ways, tickets
rendered to PNG and read back with OpenCV's QR detector.

Waits are "until something happens, or fail after a generous limit", never timing assertions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from drivers.base import (
    CommandDone,
    DeviceCommand,
    DeviceState,
    DeviceTimeout,
    DeviceUnavailable,
    Observation,
    PrinterStatus,
    ProtocolError,
)
from drivers.escpos_printer.driver import EscposPrinter
from drivers.escpos_printer.settings import EscposPrinterConfig
from drivers.registry import driver_class
from drivers.sim.printer import MidTicket, PrinterSim
from drivers.supervisor import Backoff, DeviceRunner, wait_for_state
from gated.booth.ticket import TicketInfo, test_ticket_document, ticket_document
from gated.config import GatedConfig
from tests.support import polling
from tests.support.devices import device_factory

pytestmark = pytest.mark.timeout(30)
LIMIT_S = 3.0
poll_until = partial(polling.pump_until, limit=LIMIT_S)
OK = PrinterStatus(online=True)


def gated_config(**ticket: Any) -> GatedConfig:
    return GatedConfig.model_validate({
        "site": {"id": "town-1", "hall_name": "青山镇便民服务中心"},
        "booth": {"id": "east", "name": "东门"},
        "ticket": {"rating_url": "https://pj.example.gov.cn/r?t={ticket_id}&s={site}&b={booth}",
                   "hotline_number": "0571-12345", **ticket}})


def info(**over: Any) -> TicketInfo:
    values: dict[str, Any] = dict(ticket_id="01J9ZK3T7Q", number="A007",
                                  service_name="社保医保", issued_at=datetime(2026, 3, 2, 1, 5,
                                                                          tzinfo=UTC),
                                  ahead=3, wait_min=24)
    values.update(over)
    return TicketInfo(**values)


def printer_config(port: str, **over: Any) -> EscposPrinterConfig:
    values: dict[str, Any] = dict(type="escpos_printer", port=port, status_interval_s=0.05,
                                  response_timeout_ms=100, print_settle_ms=20)
    values.update(over)
    return EscposPrinterConfig.model_validate(values)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[PrinterSim]:
    with PrinterSim(tmp_path / "tickets") as s:
        yield s


@pytest.fixture
def make_printer(sim: PrinterSim) -> Iterator[Callable[..., EscposPrinter]]:
    with device_factory(lambda **over: EscposPrinter("printer", printer_config(sim.port, **over))
                        ) as make:
        yield make


@pytest.fixture
def printer(make_printer: Callable[..., EscposPrinter]) -> EscposPrinter:
    return make_printer()


def print_doc(p: EscposPrinter, doc: dict[str, Any], cid: str = "c1") -> list[Observation]:
    return list(p.execute(DeviceCommand(cid, "print", {"ticket": doc})))


def done(out: list[Observation]) -> CommandDone:
    found = [o for o in out if isinstance(o, CommandDone)]
    assert len(found) == 1, out
    return found[0]


def decode_qr(png: Path) -> str:
    cv2 = pytest.importorskip("cv2")
    img = cv2.imread(str(png))
    data, _, _ = cv2.QRCodeDetector().detectAndDecode(img)
    return str(data)


# ---------------------------------------------------------------- printing


def test_registered_under_its_config_type() -> None:
    assert driver_class("escpos_printer") is EscposPrinter


def test_open_reports_status_first(printer: EscposPrinter) -> None:
    assert printer.poll(0.01) == [OK]
    assert printer.fault is None


def test_chinese_ticket_renders_with_a_readable_qr(printer: EscposPrinter,
                                                   sim: PrinterSim) -> None:
    cfg = gated_config()
    doc = ticket_document(cfg, info(priority=True, priority_label="预约"))
    assert done(print_doc(printer, doc)) == CommandDone("c1", True, "printed")
    assert sim.wait_tickets(1, LIMIT_S)
    ticket = sim.tickets[0]
    assert ticket.png is not None and ticket.png.exists()
    assert decode_qr(ticket.png) == doc["rating_url"]
    assert doc["rating_url"] == "https://pj.example.gov.cn/r?t=01J9ZK3T7Q&s=town-1&b=east"
    text = ticket.png.with_suffix(".txt").read_text("utf-8")
    assert text == ticket.text
    lines = text.splitlines()
    for expected in ("青山镇便民服务中心", "东门", "社保医保", "A007", "【预约】", "前面还有 3 人",
                     "预计等候约 24 分钟", "取号时间 2026-03-02 09:05", "办不成事找局长 0571-12345",
                     "如有疑问请到 首问负责台", f"[QR] {doc['rating_url']}"):
        assert expected in lines, (expected, lines)


def test_unprintable_ticket_is_refused_and_the_printer_keeps_working(
        printer: EscposPrinter, sim: PrinterSim) -> None:
    doc = ticket_document(gated_config(), info())
    too_long = {**doc, "rating_url": "https://pj.example.gov.cn/r?t=" + "x" * 8000}
    result = done(print_doc(printer, too_long))
    assert not result.ok and result.detail.startswith("unprintable")
    assert printer.fault is None
    assert done(print_doc(printer, doc, "c2")).ok
    assert sim.wait_tickets(1, LIMIT_S)


def test_regular_ticket_has_no_priority_mark(printer: EscposPrinter, sim: PrinterSim) -> None:
    print_doc(printer, ticket_document(gated_config(), info()))
    assert sim.wait_tickets(1, LIMIT_S)
    assert "【" not in sim.tickets[0].text and "A007" in sim.tickets[0].text


@pytest.mark.parametrize(("configured", "name", "printed"), [
    (False, "张*", None),
    (True, "张*", "姓名 张*"),
    (True, "张三丰", None),  # not masked: never printed
])
def test_masked_name_only_when_configured(printer: EscposPrinter, sim: PrinterSim,
                                          configured: bool, name: str,
                                          printed: str | None) -> None:
    doc = ticket_document(gated_config(print_masked_name=configured), info(masked_name=name))
    print_doc(printer, doc)
    assert sim.wait_tickets(1, LIMIT_S)
    lines = sim.tickets[0].text.splitlines()
    assert (printed in lines) if printed else not any("姓名" in ln for ln in lines)
    assert "三丰" not in sim.tickets[0].text


def test_test_ticket_is_marked(printer: EscposPrinter, sim: PrinterSim) -> None:
    doc = test_ticket_document(gated_config())
    assert done(print_doc(printer, doc)).ok
    assert sim.wait_tickets(1, LIMIT_S)
    assert "*** 测试票 仅供测试 ***" in sim.tickets[0].text.splitlines()


def test_reprint_is_marked(printer: EscposPrinter, sim: PrinterSim) -> None:
    print_doc(printer, ticket_document(gated_config(), info(reprint=True)))
    assert sim.wait_tickets(1, LIMIT_S)
    assert "*** 补打 ***" in sim.tickets[0].text.splitlines()


@pytest.mark.parametrize(("four_byte", "shown"), [(False, "张?"), (True, "张𠀀")])
def test_four_byte_gb18030_only_when_the_font_has_it(make_printer: Callable[..., EscposPrinter],
                                                     sim: PrinterSim, four_byte: bool,
                                                     shown: str) -> None:
    p = make_printer(gb18030_four_byte=four_byte)
    doc = ticket_document(gated_config(footer="张𠀀"), info())
    print_doc(p, doc)
    assert sim.wait_tickets(1, LIMIT_S)
    assert shown in sim.tickets[0].text.splitlines()


def test_bad_print_arguments(printer: EscposPrinter, sim: PrinterSim) -> None:
    out = list(printer.execute(DeviceCommand("c1", "print", {"ticket": "A007"})))
    assert not done(out).ok
    out = list(printer.execute(DeviceCommand("c2", "dance")))
    assert not done(out).ok and "unsupported" in done(out).detail


def test_status_command(printer: EscposPrinter, sim: PrinterSim) -> None:
    printer.poll(0.01)
    sim.set(paper_near_end=True)
    out = list(printer.execute(DeviceCommand("s1", "status")))
    assert PrinterStatus(online=True, paper_near_end=True) in out
    assert done(out) == CommandDone("s1", True, "paper_near_end")
    assert printer.fault is None  # near end still prints


# ---------------------------------------------------------------- paper and cover


def test_paper_out_refuses_without_sending_then_paper_back(printer: EscposPrinter,
                                                          sim: PrinterSim) -> None:
    printer.poll(0.01)
    sim.set(paper_out=True)
    out = poll_until(printer, lambda o: isinstance(o, PrinterStatus) and o.paper_out)
    assert PrinterStatus(online=False, paper_near_end=True, paper_out=True) in out
    assert printer.fault == "paper_out"
    received = sim.received
    doc = ticket_document(gated_config(), info())
    out = print_doc(printer, doc)
    assert done(out) == CommandDone("c1", False, "paper_out")
    assert sim.received - received == 12  # the four status requests, no ticket byte
    sim.set(paper_out=False)
    out = poll_until(printer, lambda o: o == OK)
    assert printer.fault is None
    assert done(print_doc(printer, {**doc, "reprint": True}, "c2")).ok
    assert sim.wait_tickets(1, LIMIT_S) and sim.spoiled == 0


def test_paper_runs_out_mid_ticket(printer: EscposPrinter, sim: PrinterSim) -> None:
    sim.mid_ticket = MidTicket.PAPER_OUT
    out = print_doc(printer, ticket_document(gated_config(), info()))
    assert done(out) == CommandDone("c1", False, "paper_out")
    assert any(isinstance(o, PrinterStatus) and o.paper_out for o in out)
    time.sleep(0.1)
    assert sim.tickets == [] and sim.spoiled == 1


@pytest.mark.parametrize(("knob", "status", "fault"), [
    ("cover_open", PrinterStatus(online=False, cover_open=True), "cover_open"),
    ("cutter_error", PrinterStatus(online=False, cutter_error=True), "cutter_error"),
    ("offline", PrinterStatus(online=False), "offline"),
])
def test_faults_become_status_and_fault(printer: EscposPrinter, sim: PrinterSim, knob: str,
                                        status: PrinterStatus, fault: str) -> None:
    printer.poll(0.01)
    sim.set(**{knob: True})
    poll_until(printer, lambda o: o == status)
    assert printer.fault == fault
    assert done(print_doc(printer, ticket_document(gated_config(), info()))).detail == fault
    sim.set(**{knob: False})
    poll_until(printer, lambda o: o == OK)
    assert printer.fault is None


def test_automatic_status_back_reports_between_polls(make_printer: Callable[..., EscposPrinter],
                                                     sim: PrinterSim) -> None:
    p = make_printer(auto_status_back=True, status_interval_s=60)
    assert p.poll(0.01) == [OK]
    assert sim.asb_enabled
    asked = sim.status_requests
    sim.set(cover_open=True)
    poll_until(p, lambda o: isinstance(o, PrinterStatus) and o.cover_open)
    assert sim.status_requests == asked  # came unasked
    assert p.fault == "cover_open"


# ---------------------------------------------------------------- bad links


def test_garbage_is_a_protocol_error(printer: EscposPrinter, sim: PrinterSim) -> None:
    printer.poll(0.01)
    sim.set(garbage=True)
    with pytest.raises(ProtocolError):
        poll_until(printer, lambda o: False)
    sim.set(garbage=False)
    assert printer.poll(0.2) == []  # the link recovers; the status did not change


def test_garbage_at_open(make_printer: Callable[..., EscposPrinter], sim: PrinterSim) -> None:
    sim.set(garbage=True)
    with pytest.raises(ProtocolError):
        make_printer()


def test_silence_is_a_timeout(printer: EscposPrinter, sim: PrinterSim) -> None:
    printer.poll(0.01)
    sim.set(silent=True)
    with pytest.raises(DeviceTimeout):
        poll_until(printer, lambda o: False)


def test_silent_printer_does_not_open(make_printer: Callable[..., EscposPrinter],
                                      sim: PrinterSim) -> None:
    sim.set(silent=True)
    with pytest.raises(DeviceTimeout):
        make_printer()


def test_unplug_while_idle(printer: EscposPrinter, sim: PrinterSim) -> None:
    printer.poll(0.01)
    sim.unplug()
    with pytest.raises(DeviceUnavailable):
        poll_until(printer, lambda o: False)


def test_unplug_mid_print(printer: EscposPrinter, sim: PrinterSim) -> None:
    sim.mid_ticket = MidTicket.UNPLUG
    with pytest.raises(DeviceUnavailable):
        print_doc(printer, ticket_document(gated_config(), info()))
    assert sim.tickets == []


def test_missing_port_is_unavailable() -> None:
    p = EscposPrinter("printer", printer_config("/dev/does-not-exist"))
    with pytest.raises(DeviceUnavailable):
        p.open()
    p.close()


# ---------------------------------------------------------------- under the supervisor


def test_supervised_states_follow_the_paper(sim: PrinterSim) -> None:
    seen: list[Observation] = []
    runner = DeviceRunner("printer", lambda: EscposPrinter("printer", printer_config(sim.port)),
                          on_observation=lambda _n, o: seen.append(o),
                          on_state=lambda *_a: None, backoff=Backoff(0.05, 0.1))
    runner.start()
    try:
        assert wait_for_state(runner, DeviceState.READY, LIMIT_S)
        sim.set(paper_out=True)
        assert wait_for_state(runner, DeviceState.DEGRADED, LIMIT_S)
        assert runner.reason == "paper_out"
        runner.send(DeviceCommand("c1", "print",
                                  {"ticket": ticket_document(gated_config(), info())}))
        deadline = time.monotonic() + LIMIT_S
        while time.monotonic() < deadline and not any(isinstance(o, CommandDone) for o in seen):
            time.sleep(0.01)
        assert CommandDone("c1", False, "paper_out") in seen
        sim.set(paper_out=False)
        assert wait_for_state(runner, DeviceState.READY, LIMIT_S)
        sim.unplug()
        assert wait_for_state(runner, DeviceState.OFFLINE, LIMIT_S)
        assert runner.reason.startswith("unavailable")
    finally:
        runner.stop()


@pytest.mark.parametrize(("status", "fault"), [
    (PrinterStatus(online=True), None),
    (PrinterStatus(online=True, paper_near_end=True), None),  # still prints: a warning only
    (PrinterStatus(online=False), "offline"),
    (PrinterStatus(online=False, cutter_error=True), "cutter_error"),
    (PrinterStatus(online=False, cover_open=True, cutter_error=True), "cover_open"),
    (PrinterStatus(online=False, cover_open=True, paper_out=True), "paper_out"),
])
def test_printer_fault_names_the_most_actionable_reason(status: PrinterStatus,
                                                        fault: str | None) -> None:
    assert status.fault == fault
