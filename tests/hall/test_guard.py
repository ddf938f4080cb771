"""The guard console in a real browser: an assist request is acknowledged with one tap and the
assist lamp (the relay board simulator's lamp coil) goes off; gates ask for the PIN again; the
notice line reaches the display; and nobody without the role can post a command."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.hall.conftest import Booth, sign_in, wait_js
from tests.support.hall import USERS
from tests.support.polling import wait_for

pytestmark = pytest.mark.timeout(120)
LAMP = 3  # GateCoils default: relay 3 is the assist lamp


def guard_page(booth: Booth, user: str = "g01") -> Any:
    page = booth.page("/guard", 1366, 1000)
    wait_js(page, "() => document.querySelector('input[name=user]')")
    sign_in(page, user, USERS[user][1])
    wait_js(page, "() => window.hallState.views > 0 && document.getElementById('alerts')")
    return page


def test_the_guard_acknowledges_an_assist_request_and_the_lamp_goes_off(booth: Booth) -> None:
    page = guard_page(booth)
    assert booth.cmd("assist", kind="other")["ok"]  # the assist button ...
    assert booth.cmd("manual_ticket")["ok"]  # ... then the visitor's ticket: escort, lamp on
    wait_for(lambda: booth.sim.hall.relays[LAMP], 10, "the assist lamp on")
    case = wait_js(page, "() => { const b = document.querySelector('button[data-ack]'); "
                         "return b && b.dataset.ack; }")
    assert page.evaluate("() => window.hallRings") >= 1  # the alarm rang
    booth.shot(page, "guard")
    page.click(f"button[data-ack='{case}']")
    wait_for(lambda: not booth.sim.hall.relays[LAMP], 10, "the assist lamp off")
    ack = next(e["data"] for e in booth.events("assist.ack") if e["data"]["case_id"] == case)
    assert ack["by"] == "g01"
    audit = wait_for(lambda: [e["data"] for e in booth.events("command")  # audited after
                              if e["data"]["name"] == "assist_ack"], 10, "the audit event")
    assert audit[-1]["actor"] == {"source": "hall", "role": "guard", "clerk": "g01"}
    page.context.close()


def test_opening_a_gate_asks_for_the_pin_again_and_the_notice_reaches_the_display(
        booth: Booth) -> None:
    page = guard_page(booth)
    opens = booth.sim.hall.presses
    from drivers.sim.barrier_arm import Button

    before = opens(Button.OPEN)
    page.click("text=开闸 >> nth=0")
    page.fill("#pin-again", "0000")
    page.click(".g-pin button[type=submit]")
    wait_js(page, "() => document.getElementById('msg').textContent.includes('PIN')")
    assert opens(Button.OPEN) == before  # a wrong PIN opens nothing
    page.click("text=开闸 >> nth=0")
    page.fill("#pin-again", USERS["g01"][1])
    page.click(".g-pin button[type=submit]")
    wait_js(page, "() => document.getElementById('msg').textContent.includes('已执行')")
    wait_for(lambda: opens(Button.OPEN) > before, 10, "the gate opened")
    page.fill("#notice-text", "社保窗口 14:00 恢复办理")
    page.click("#notice-set")
    display = booth.page("/display", 1920, 1080)
    wait_js(display, "() => (document.getElementById('notice') || {}).textContent === "
                     "'社保窗口 14:00 恢复办理'")
    booth.shot(display, "display-notice")
    display.context.close()
    assert booth.events("display.notice")[-1]["data"] == {"text": "社保窗口 14:00 恢复办理",
                                                         "by": "g01"}
    page.context.close()


def post_from(page: Any, path: str, body: dict[str, Any], csrf: bool = True) -> Any:
    return page.evaluate("""([path, body, csrf]) => fetch(path, {method: 'POST',
        headers: {'content-type': 'application/json',
                  'x-csrf-token': csrf ? document.body.dataset.csrf : ''},
        body: JSON.stringify(body)}).then(async (r) => [r.status, await r.json()])""",
                         [path, body, csrf])


def test_a_display_user_cannot_post_a_command(booth: Booth) -> None:
    commands = booth.settled_commands()
    display = booth.page("/display")
    status, body = post_from(display, "/api/action", {"action": "call_next", "args": {}})
    assert (status, body["reason"]) == (401, "not_signed_in")
    status, body = post_from(display, "/api/action", {"action": "open_gate", "args": {
        "zone": "hall", "pin": "1357"}})
    assert status == 401
    display.context.add_cookies([{"name": "gated_hall", "value": "forged", "url":
                                  booth.hall.url}])
    status, body = post_from(display, "/api/action", {"action": "call_next", "args": {}})
    assert (status, body["reason"]) == (401, "session_expired")
    display.context.close()
    counter = booth.page("/counter")
    wait_js(counter, "() => document.querySelector('select[name=counter] option')")
    sign_in(counter, "c07", USERS["c07"][1], "3")
    wait_js(counter, "() => document.getElementById('btn-1')")
    status, body = post_from(counter, "/api/action", {"action": "set_notice",
                                                      "args": {"text": "x"}})
    assert (status, body["reason"]) == (403, "forbidden")  # a clerk is not the guard
    status, body = post_from(counter, "/api/action", {"action": "call_next", "args": {}},
                             csrf=False)
    assert (status, body["reason"]) == (403, "csrf")
    status, body = post_from(counter, "/api/action", {"action": "call_next",
                                                      "args": {"counter": "9"}})
    assert (status, body["reason"]) == (400, "unknown_field")  # the counter is the session's
    counter.context.close()
    assert booth.settled_commands() == commands, json.dumps(booth.events("command")[-1])
