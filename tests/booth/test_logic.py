"""The booth end to end, in-process: real store, state thread, supervised drivers on ptys talking
to the byte-exact simulators (SAM reader, relay boards, printer), commands through the registry.

Each test drives what a visitor, guard or clerk does and checks both the devices (relay pulses,
rendered tickets) and what was committed to the outbox.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.base import DeviceState
from drivers.modbus.rtu import CoilValue, write_coil_request
from drivers.modbus_gate.settings import GateCoils
from drivers.sim.barrier_arm import Button
from drivers.sim.sam_reader import SamFault
from gated.app.daemon import Daemon
from gated.app.simulate import SimBooth
from gated.config import load_config
from tests.support.cards import ADULT, BAD_CHECK_NUMBER, ELDER_LONG_TERM, LEAP_DAY
from tests.support.polling import wait_for

pytestmark = pytest.mark.timeout(60)
ALWAYS_OPEN = {d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


class Booth:
    """A running daemon on simulators, with helpers to read what it committed."""

    def __init__(self, sim: SimBooth, daemon: Daemon) -> None:
        self.sim = sim
        self.d = daemon

    def cmd(self, name: str, **args: Any) -> dict[str, Any]:
        return self.d.dispatch_local(name, args)

    def events(self, etype: str | None = None) -> list[dict[str, Any]]:
        assert self.d.store is not None
        conn = self.d.store.reader()
        try:
            rows = conn.execute("SELECT body FROM events ORDER BY seq").fetchall()
        finally:
            conn.close()
        out = [json.loads(r[0]) for r in rows]
        return [e for e in out if etype is None or e["type"] == etype]

    def wait_event(self, etype: str, pred: Callable[[dict[str, Any]], bool] = lambda e: True,
                   timeout: float = 8.0) -> dict[str, Any]:
        hit: dict[str, Any] = wait_for(lambda: next((e for e in self.events(etype) if pred(e)),
                                                None), timeout, etype)
        return hit

    def tap(self, card: Any) -> None:
        self.sim.reader.present(card)
        time.sleep(0.6)
        self.sim.reader.remove()


def _ready(d: Daemon) -> bool:
    assert d.devices is not None
    return all(s["state"] == DeviceState.READY for s in d.devices.snapshot().values())


@pytest.fixture
def booth(tmp_path: Path) -> Iterator[Booth]:
    with SimBooth(tmp_path / "sim", mqtt="off") as sim:
        text = sim.config_path.read_text(encoding="utf-8")
        text += '\n[ticket]\npriority_mark = "敬老优先"\n'
        sim.config_path.write_text(text, encoding="utf-8")
        cfg = load_config(sim.config_path)
        assert cfg.schedule.hours == ALWAYS_OPEN, text
        d = Daemon(cfg, config_path=sim.config_path)
        d.start()
        try:
            wait_for(lambda: _ready(d), 15, "all devices ready")
            yield Booth(sim, d)
        finally:
            d.stop()


def test_resident_card_opens_the_hall_and_prints_a_ticket(booth: Booth) -> None:
    booth.tap(ADULT)
    issued = booth.wait_event("ticket.issued")
    assert booth.sim.printer.wait_tickets(1, 10)
    ticket = booth.sim.printer.tickets[0]
    assert issued["data"]["number"] in ticket.text
    assert "办不成事找局长" in ticket.text
    wait_for(lambda: booth.sim.hall.presses(Button.OPEN) >= 1, what="hall gate pulse")
    assert booth.sim.office.presses(Button.OPEN) == 0
    cred = booth.wait_event("credential")["data"]
    assert cred["age_band"] and cred["pseudonym"] and "*" in cred["masked_number"]
    decision = booth.wait_event("decision")["data"]
    assert (decision["outcome"], decision["zone"]) == ("admit", "hall")
    booth.wait_event("ticket.printed", lambda e: e["data"]["number"] == issued["data"]["number"])
    types = [e["type"] for e in booth.events()]
    assert types.index("decision") < types.index("gate.command") < types.index("ticket.printed")


def test_elderly_visitor_gets_priority_escort_and_lamp(booth: Booth) -> None:
    booth.tap(ELDER_LONG_TERM)
    issued = booth.wait_event("ticket.issued")["data"]
    assert issued["priority"] and issued["priority_reason"] == "elderly"
    request = booth.wait_event("assist.request")["data"]
    lamp = booth.d.cfg.devices["hall_gate"].coils.lamp  # type: ignore[union-attr]
    wait_for(lambda: booth.sim.hall.relays[lamp], what="assist lamp on")
    assert booth.sim.printer.wait_tickets(1, 10)
    assert "敬老优先" in booth.sim.printer.tickets[0].text  # the configured priority_mark
    assert booth.cmd("assist_ack", case_id=request["case_id"], by="guard-1")["ok"]
    wait_for(lambda: not booth.sim.hall.relays[lamp], what="assist lamp off")
    assert booth.cmd("assist_ack", case_id=request["case_id"])["reason"] == "already_acked"


def test_assist_button_reason_is_never_stored(booth: Booth) -> None:
    assert booth.cmd("assist", kind="pregnancy")["ok"]
    booth.tap(ADULT)
    booth.wait_event("assist.request")
    assert "pregnan" not in json.dumps(booth.events())


def test_invalid_card_is_sent_to_the_guard(booth: Booth) -> None:
    from dataclasses import replace

    booth.tap(replace(ADULT, id_number=BAD_CHECK_NUMBER))
    e = booth.wait_event("card.unreadable")["data"]
    assert "guard" in e["message"] and e["action"] == "see_guard"
    # a genuine card's chip never holds a wrong check character: the guard looks at it
    alarm = booth.wait_event("alarm", lambda a: a["data"]["kind"] == "card_suspect")
    assert alarm["data"]["reason"] == "bad_check_digit" and alarm["priority"] == "alarm"
    time.sleep(0.5)
    assert booth.sim.hall.presses(Button.OPEN) == 0 and not booth.events("ticket.issued")


def test_a_read_damaged_on_the_line_asks_the_visitor_to_present_the_card_again(
        booth: Booth) -> None:
    booth.sim.reader.damage_reads(SamFault.TRUNCATED)
    booth.tap(ADULT)
    e = booth.wait_event("card.unreadable")["data"]
    assert (e["reason"], e["action"]) == ("truncated", "present_again")
    assert not [a for a in booth.events("alarm") if a["data"]["kind"] == "card_suspect"]
    booth.tap(ADULT)  # presented again: in
    booth.wait_event("ticket.issued")


def test_paper_out_ticket_is_reprinted_when_paper_is_back(booth: Booth) -> None:
    booth.sim.printer.set(paper_out=True)
    wait_for(lambda: booth.d.devices.state("printer") is DeviceState.DEGRADED,  # type: ignore[union-attr]
         what="printer degraded")
    reply = booth.cmd("manual_ticket")
    assert reply["ok"], reply
    number = booth.wait_event("ticket.issued")["data"]["number"]
    booth.wait_event("ticket.reprint", lambda e: e["data"]["number"] == number)
    booth.wait_event("alarm", lambda e: e["data"]["kind"] == "printer_paper_out")
    assert [r["number"] for r in booth.cmd("reprints")["reprints"]] == [number]
    booth.sim.printer.set(paper_out=False)
    assert booth.sim.printer.wait_tickets(1, 15)
    assert number in booth.sim.printer.tickets[0].text
    booth.wait_event("ticket.printed", lambda e: e["data"]["reprint"])
    assert booth.cmd("reprints")["reprints"] == []


def test_no_printer_gate_still_opens_and_ticket_goes_to_the_guard(booth: Booth) -> None:
    booth.sim.printer.unplug()
    wait_for(lambda: booth.d.devices.state("printer") is DeviceState.OFFLINE,  # type: ignore[union-attr]
         what="printer offline")
    booth.tap(ADULT)
    number = booth.wait_event("ticket.issued")["data"]["number"]
    wait_for(lambda: booth.sim.hall.presses(Button.OPEN) >= 1, what="gate pulse")
    booth.wait_event("ticket.reprint", lambda e: e["data"]["reason"] == "printer_not_ready")
    assert booth.cmd("reprint_handed", ticket=number)["ok"]
    assert booth.cmd("reprints")["reprints"] == []


def test_calling_commands(booth: Booth) -> None:
    for _ in range(3):
        assert booth.cmd("manual_ticket")["ok"]
    assert booth.cmd("manual_ticket", service="social", priority="military")["ok"]
    first = booth.cmd("call_next", counter="1", services=["general"])
    assert first["ticket"]["number"] == "A001"
    assert booth.cmd("recall", counter="1")["ticket"]["recalls"] == 1
    moved = booth.cmd("transfer", counter="1", service="social")
    assert moved["ticket"]["service"] == "social"
    nxt = booth.cmd("call_next", counter="2", services=["social"])
    assert nxt["ticket"]["priority"]  # the military priority ticket goes first
    assert booth.cmd("no_show", counter="2")["ok"]
    assert booth.cmd("served", counter="2")["reason"] == "no_current_ticket"
    assert booth.cmd("call_next", counter="1", services=["nope"])["reason"] == "unknown_service"
    assert booth.cmd("call_next", counter="1")["ok"]
    stats = booth.cmd("queue_stats")["services"]
    assert stats["general"]["waiting"] + stats["general"]["called"] >= 2
    booth.wait_event("ticket.called", lambda e: e["data"]["action"] == "recall")
    # call_next closes the counter's ticket as served, and says so in an event
    current = booth.cmd("call_next", counter="1")["ticket"]
    assert booth.cmd("call_next", counter="1")["ok"]
    closed = booth.wait_event("ticket.closed", lambda e: e["data"]["number"] == current["number"])
    assert closed["data"]["state"] == "served" and closed["data"]["by"] == "call_next"
    assert booth.cmd("pause_counter", counter="1")["changed"]
    assert booth.cmd("call_next", counter="1")["reason"] == "counter_paused"
    assert booth.d.status()["queue"]["counters"]["1"]["paused"]
    assert booth.cmd("resume_counter", counter="1")["state"] == "open"
    assert [e["data"]["state"] for e in booth.events("counter")] == ["paused", "open"]


def test_sync_lists_without_mqtt_says_so(booth: Booth) -> None:
    reply = booth.cmd("sync_lists")
    assert (reply["ok"], reply["reason"]) == (False, "mqtt_disabled")
    assert reply["versions"] == {"staff_badges": 0, "appointments": 0, "alerts": 0}
    assert booth.cmd("sync_lists", list="people")["reason"] == "unknown_list"


def test_free_passage_holds_the_gate_and_taps_only_print(booth: Booth) -> None:
    assert booth.cmd("set_zone_mode", zone="hall", mode="free_passage")["ok"]
    wait_for(lambda: booth.sim.hall.position() > 0.9, what="hall held open")
    presses = booth.sim.hall.presses(Button.OPEN)
    booth.tap(ADULT)
    booth.wait_event("ticket.issued")
    assert booth.sim.printer.wait_tickets(1, 10)
    assert booth.sim.hall.presses(Button.OPEN) == presses
    assert booth.cmd("set_zone_mode", zone="hall", mode="bogus")["reason"] == "bad_mode"
    assert booth.cmd("open_gate", zone="nowhere")["reason"] == "unknown_zone"


def test_escalation_to_the_director(booth: Booth) -> None:
    assert booth.cmd("manual_ticket")["ok"]
    number = booth.wait_event("ticket.issued")["data"]["number"]
    booth.cmd("call_next", counter="3")
    case = booth.cmd("escalate", number=number)
    assert case["ok"]
    e = booth.wait_event("escalation")["data"]
    assert (e["number"], e["service"], e["counters"]) == (number, "general", ["3"])
    assert (e["state"], e["ticket_state"]) == ("open", "called")  # the case's, the ticket's
    status = booth.d.status()["queue"]
    assert [c["case_id"] for c in status["open_escalations"]] == [case["case_id"]]
    assert booth.cmd("escalation_ack", case_id=case["case_id"])["ok"]
    assert booth.cmd("escalation_close", case_id=case["case_id"], outcome="resolved")["ok"]
    assert booth.d.status()["queue"]["open_escalations"] == []
    assert booth.cmd("escalate", number="Z999")["reason"] == "unknown_ticket"


def test_registered_guest_is_let_into_the_office_from_the_first_tap(booth: Booth) -> None:
    assert booth.cmd("register_guest", zone="office", minutes=30)["ok"]
    booth.tap(ADULT)
    decision = booth.wait_event("decision")["data"]
    assert (decision["visitor"], decision["zone"]) == ("guest", "office")
    wait_for(lambda: booth.sim.office.presses(Button.OPEN) == 1, what="office gate pulse")
    registered = booth.wait_event("command", lambda e: "until" in e["data"])
    assert registered["data"]["pseudonym"] == decision["pseudonym"]
    booth.tap(ADULT)  # the same visitor coming back within the 30 minutes
    wait_for(lambda: len(booth.events("decision")) == 2, what="second decision")
    assert booth.events("decision")[1]["data"]["visitor"] == "guest"
    assert [e["data"]["device"] for e in booth.events("gate.command")] == ["office_gate"] * 2


def test_status_answers_while_the_state_thread_is_busy(booth: Booth) -> None:
    import threading

    assert booth.cmd("manual_ticket")["ok"]
    assert booth.d.loop is not None
    release = threading.Event()
    booth.d.loop.post(lambda b: release.wait(10))  # a long transaction in progress
    try:
        queue = booth.d.status()["queue"]
    finally:
        release.set()
    assert queue["waiting"] == 1 and queue["services"]["general"]["waiting"] == 1


def test_the_gate_opens_before_the_ticket_prints(booth: Booth) -> None:
    """The visitor waits for the gate, not for the ticket: the relay command reaches the board
    before the printer gets its first byte, tap after tap."""
    open_frame = write_coil_request(1, GateCoils().open, CoilValue.ON)
    for card in (ADULT, LEAP_DAY, ELDER_LONG_TERM, ADULT):
        tapped = time.perf_counter()
        booth.tap(card)
        wait_for(lambda t=tapped: [t0 for t0, f in list(booth.sim.hall.request_log)
                                   if f == open_frame and t0 > t], what="the OPEN frame")
        wait_for(lambda t=tapped: [r for r in list(booth.sim.printer.init_log) if r > t],
                 what="the ticket's bytes")
        relay = min(t0 for t0, f in list(booth.sim.hall.request_log)
                    if f == open_frame and t0 > tapped)
        printer = min(r for r in list(booth.sim.printer.init_log) if r > tapped)
        assert relay < printer, f"ticket {printer - relay:.4f} s before the gate"
        booth.sim.hall.set_beam(True)
        time.sleep(0.3)
        booth.sim.hall.set_beam(False)
        wait_for(lambda: booth.sim.hall.position() < 0.1, what="the gate closed again")


def test_tailgating_raises_an_alarm(booth: Booth) -> None:
    booth.tap(ADULT)
    wait_for(lambda: booth.sim.hall.position() > 0.9, what="gate open")
    for _ in range(2):
        booth.sim.hall.set_beam(True)
        time.sleep(0.4)
        booth.sim.hall.set_beam(False)
        time.sleep(0.4)
    booth.wait_event("alarm", lambda e: e["data"]["kind"] == "tailgating")


def test_a_second_visitor_admitted_while_the_first_is_in_the_beam_is_not_shut_out(
        booth: Booth) -> None:
    hall = booth.sim.hall
    booth.tap(ADULT)
    wait_for(lambda: hall.position() > 0.9, what="gate open")
    hall.set_beam(True)  # visitor 1 is in the gate when visitor 2 taps
    booth.tap(LEAP_DAY)
    wait_for(lambda: hall.presses(Button.OPEN) == 2, what="the second admission")
    hall.set_beam(False)  # visitor 1 is through
    booth.wait_event("gate.inputs", lambda e: e["data"]["safety_beam"] is False
                     and e["data"]["open_limit"])
    time.sleep(0.5)  # the driver would close now if it counted one passage per opening
    assert hall.presses(Button.CLOSE) == 0 and hall.position() > 0.9
    hall.set_beam(True)
    time.sleep(0.4)
    hall.set_beam(False)  # visitor 2 is through: now it closes
    wait_for(lambda: hall.presses(Button.CLOSE) == 1, what="the gate closing")
    assert not [e for e in booth.events("alarm") if e["data"]["kind"] == "tailgating"]


def test_state_survives_a_restart(tmp_path: Path) -> None:
    with SimBooth(tmp_path / "sim", mqtt="off") as sim:
        for expected in ("A001", "A002"):
            d = Daemon(load_config(sim.config_path), config_path=sim.config_path)
            d.start()
            try:
                wait_for(lambda d=d: _ready(d), 15, "ready")  # type: ignore[misc]
                reply = d.commands.dispatch("manual_ticket", b'{"args": {}}', source="local")
                assert reply["ok"], reply
                assert d.store is not None
                conn = d.store.reader()
                numbers = [r[0] for r in conn.execute("SELECT number FROM q_tickets")]
                conn.close()
                assert numbers[-1] == expected
            finally:
                d.stop()
        db = sqlite3.connect(sim.directory / "state" / "gated.db")
        seqs = [r[0] for r in db.execute("SELECT seq FROM events ORDER BY seq")]
        db.close()
        assert seqs == sorted(set(seqs))


def test_corrupted_outbox_is_moved_aside_and_reported(tmp_path: Path) -> None:
    """A state database that is not a database (an SD card's bad sector, a half-copied file):
    the daemon starts on a fresh one, keeps the damaged file, and raises an alarm event saying
    where it went and where the sequence resumes."""
    with SimBooth(tmp_path / "sim", mqtt="off") as sim:
        db = sim.directory / "state" / "gated.db"
        db.write_bytes(b"\x00garbage, not SQLite" * 500)
        d = Daemon(load_config(sim.config_path), config_path=sim.config_path)
        d.start()
        try:
            booth = Booth(sim, d)
            e = booth.wait_event("outbox.corrupted")
            assert e["priority"] == "alarm" and Path(e["data"]["moved_to"]).exists()
            assert "not a database" in e["data"]["error"]
            assert e["data"]["seq_resumed_at"] >= 1
            assert e["data"]["ranges"] == []  # nothing was reserved before: nothing skipped
            assert booth.cmd("manual_ticket")["ok"]  # and the booth serves on the new store
        finally:
            d.stop()


def test_a_missing_database_skips_the_reserved_numbers_and_says_which(tmp_path: Path) -> None:
    """The database file is gone (deleted, a card swapped) but the sequence reservation and
    the session file are there: numbering resumes above the reservation, an outbox.skipped
    alarm names the skipped numbers, and the session still counts up."""
    with SimBooth(tmp_path / "sim", mqtt="off") as sim:
        state = sim.directory / "state"
        d = Daemon(load_config(sim.config_path), config_path=sim.config_path)
        d.start()
        try:
            booth = Booth(sim, d)
            first = booth.wait_event("booth.started")
            assert first["data"]["session_from"] == "first" and first["session"] == 1
        finally:
            d.stop()
        for name in ("gated.db", "gated.db-wal", "gated.db-shm"):
            (state / name).unlink(missing_ok=True)
        hwm = int((state / "seq.hwm").read_text())
        d = Daemon(load_config(sim.config_path), config_path=sim.config_path)
        d.start()
        try:
            booth = Booth(sim, d)
            e = booth.wait_event("outbox.skipped")
            assert e["data"]["ranges"] == [[1, hwm]] and e["data"]["seq_resumed_at"] == hwm + 1
            assert e["session"] == 2 and e["seq"] > hwm
            started = booth.wait_event("booth.started")
            assert started["data"]["session_from"] == "file"
        finally:
            d.stop()


def test_front_desk_commands_rate_callbacks_and_notice(booth: Booth) -> None:
    assert booth.cmd("manual_ticket")["ok"]
    assert booth.cmd("call_next", counter="4")["ok"]
    assert booth.cmd("rate", ticket="A001", level="satisfied")["reason"] == "not_served"
    assert booth.cmd("served", counter="4")["ok"]
    assert booth.cmd("rate", ticket="A001", level="meh")["reason"] == "bad_level"
    bad = booth.cmd("rate", ticket="A001", level="dissatisfied", reason="等候时间长",
                    source="qr")
    case = bad["case_id"]
    assert bad["ok"] and case
    assert booth.cmd("rate", ticket="A001", level="satisfied")["reason"] == "already_rated"
    assert [c["case_id"] for c in booth.d.status()["queue"]["open_callbacks"]] == [case]
    assert booth.cmd("callback_ack", case_id=case, by="centre-1")["ok"]
    assert booth.cmd("callback_done", case_id=case, note="x" * 201)["reason"] == "too_long"
    assert booth.cmd("callback_done", case_id=case, note="called")["ok"]
    assert booth.cmd("callback_close", case_id=case, outcome="resolved")["ok"]
    assert booth.d.status()["queue"]["open_callbacks"] == []
    rating = booth.wait_event("rating")
    assert (rating["data"]["counter"], rating["data"]["source"]) == ("4", "qr")
    assert booth.cmd("set_notice", text="今日 社保窗口\n暂停至 14:00\u202e", by="g1")["ok"]
    assert booth.d.status()["queue"]["notice"]["text"] == "今日 社保窗口 暂停至 14:00"
    assert booth.cmd("set_notice", text="长" * 201)["reason"] == "bad_args"
    assert booth.wait_event("display.notice")["data"]["by"] == "g1"


def test_with_gate_inputs_off_the_gate_reports_passages_and_alarms_but_not_each_change(
        tmp_path: Path) -> None:
    with SimBooth(tmp_path / "sim", mqtt="off") as sim:
        text = sim.config_path.read_text(encoding="utf-8")
        sim.config_path.write_text(text.replace("[outbox]\n", "[outbox]\ngate_inputs = false\n")
                                   if "[outbox]\n" in text else text + "\n[outbox]\ngate_inputs"
                                   " = false\n", encoding="utf-8")
        cfg = load_config(sim.config_path)
        assert cfg.outbox.gate_inputs is False
        d = Daemon(cfg, config_path=sim.config_path)
        d.start()
        try:
            wait_for(lambda: _ready(d), 15, "all devices ready")
            booth = Booth(sim, d)
            booth.tap(ADULT)
            wait_for(lambda: sim.hall.position() > 0.9, what="gate open")
            for _ in range(2):  # two people through one opening
                sim.hall.set_beam(True)
                time.sleep(0.4)
                sim.hall.set_beam(False)
                time.sleep(0.4)
            booth.wait_event("alarm", lambda e: e["data"]["kind"] == "tailgating")
            assert booth.events("gate.command") and booth.events("ticket.issued")
            assert booth.events("gate.inputs") == []
        finally:
            d.stop()
