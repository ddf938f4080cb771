"""A hung web process never holds up the booth: with ``gated hall`` stopped dead (SIGSTOP),
cards still open the gate, tickets still print and the CLI still answers; when it runs again
its pages carry on."""

from __future__ import annotations

import signal

import pytest

from drivers.sim.barrier_arm import Button
from tests.hall.conftest import Booth, wait_js
from tests.support.cards import ADULT
from tests.support.polling import wait_for

pytestmark = pytest.mark.timeout(120)


def test_a_hung_web_process_never_delays_a_gate(booth: Booth) -> None:
    display = booth.page("/display")
    wait_js(display, "() => window.hallState.views > 0 && window.hallState.daemonOk")
    assert booth.hall.proc is not None
    # earlier tests' tickets left the arm up: an open gate is not pulsed again, so wait for it
    # to close by itself (auto_close_s) and see the next tap open it
    wait_for(lambda: booth.sim.hall.position() < 0.02, 30, "the hall gate closed")
    booth.hall.proc.send_signal(signal.SIGSTOP)
    try:
        opened = booth.sim.hall.presses(Button.OPEN)
        printed = len(booth.sim.printer.tickets)
        booth.sim.reader.present(ADULT)
        wait_for(lambda: booth.sim.hall.presses(Button.OPEN) > opened, 10, "the gate opens")
        booth.sim.reader.remove()
        for _ in range(3):
            assert booth.cmd("manual_ticket")["ok"]
        assert booth.sim.printer.wait_tickets(printed + 3, 20)
        assert booth.cmd("get_status")["ok"]
    finally:
        booth.hall.proc.send_signal(signal.SIGCONT)
    number = booth.cmd("call_next", counter="4", services=["general"])["ticket"]["number"]
    wait_js(display, "(n) => window.hallCalls.some((c) => c.number === n)", 20_000, arg=number)
    display.context.close()
