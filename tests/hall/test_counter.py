"""The counter terminal and the rating pad in a real browser, with the county broker down: a
clerk signs in (a wrong PIN is refused, repeated ones lock out), calls, transfers and marks
served, every action audited with counter and clerk; the citizen rates on the pad and a bad
rating opens a callback case."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hall.conftest import Booth, sign_in, wait_js
from tests.support.hall import USERS
from tests.support.polling import wait_for

pytestmark = pytest.mark.timeout(120)

STATE = "(document.getElementById('counter-state') || {}).textContent"


def text_of(element_id: str) -> str:
    """A JS expression: the text of the element, or "" while it is not on the page."""
    return f"(document.getElementById('{element_id}') || {{textContent: ''}}).textContent"


# Expressions in parentheses: ``a || '' === n`` would be ``a || ('' === n)``, true as soon as
# there is any text, and a wait on it would not wait.
CURRENT_TEXT = "((document.getElementById('current-number') || {}).textContent || '')"
MSG_TEXT = "((document.getElementById('msg') || {}).textContent || '')"


def counter_page(booth: Booth, user: str = "c07", counter: str = "3") -> Any:
    page = booth.page("/counter")
    wait_js(page, "() => document.querySelector('select[name=counter] option')")
    sign_in(page, user, USERS[user][1], counter)
    wait_js(page, "() => window.hallState.views > 0 && document.getElementById('btn-1')")
    return page


def test_a_wrong_pin_is_refused_and_repeated_failures_lock_out(booth: Booth) -> None:
    page = booth.page("/counter")
    wait_js(page, "() => document.querySelector('select[name=counter] option')")
    booth.shot(page, "counter-signin")
    for _ in range(3):  # signin_max_failures = 3 in the test config
        sign_in(page, "c08", "0000", "4")
        wait_js(page, "() => document.querySelector('.signin .msg').textContent.includes('PIN')")
        page.evaluate("() => { document.querySelector('.signin .msg').textContent = ''; }")
    sign_in(page, "c08", USERS["c08"][1], "4")  # the right PIN, but locked out now
    wait_js(page, "() => document.querySelector('.signin .msg').textContent.includes('锁定')")
    assert page.evaluate("() => window.hallState.views") == 0  # never got to the terminal
    log = booth.hall.log_path.read_text(errors="replace")
    assert log.count('"hall_signin_failed"') >= 4 and '"hall_signin_locked"' in log
    page.context.close()


def test_a_counter_calls_transfers_and_serves_with_the_broker_down(booth: Booth) -> None:
    assert not booth.cmd("get_status")["status"]["uplink"]["connected"]
    for service in ("general", "general"):
        assert booth.cmd("manual_ticket", service=service)["ok"]
    page = counter_page(booth)
    page.keyboard.press("1")  # the calling pad's key: call next
    wait_js(page, "() => /^[AB]\\d+$/.test(" + CURRENT_TEXT + ") && " + CURRENT_TEXT)
    page.select_option("#transfer-to", "social")
    page.click("#btn-5")
    wait_js(page, "() => " + MSG_TEXT + ".includes('已转至')")
    page.click("#btn-1")  # the transferred ticket keeps its place in time: it may come again
    reply = wait_js(page, "() => window.hallLastReply && window.hallLastReply.action === "
                          "'call_next' && window.hallLastReply.ok && window.hallLastReply.data")
    second = reply["ticket"]["number"]
    wait_js(page, "(n) => " + CURRENT_TEXT + " === n", arg=second)
    booth.shot(page, "counter")
    page.keyboard.press("3")  # served
    wait_js(page, "() => " + MSG_TEXT + ".includes('已办结')")
    page.keyboard.press("6")  # pause
    wait_js(page, "() => " + STATE + " === '暂停服务'")
    page.keyboard.press("1")  # a paused counter calls nobody
    refused = wait_js(page, "() => window.hallLastReply.action === 'call_next' && "
                            "!window.hallLastReply.ok && window.hallLastReply")
    assert (refused["status"], refused["data"]["reason"]) == (409, "counter_paused")
    page.keyboard.press("6")
    wait_js(page, "() => " + STATE + " === '服务中'")
    def mine_now() -> list[dict[str, Any]]:  # the audit event follows each reply
        return [e["data"] for e in booth.events("command")
                if (e["data"].get("actor") or {}).get("clerk") == "c07"]
    mine = wait_for(lambda: len(mine_now()) >= 7 and mine_now(), 10, "seven audit events")
    assert [a["name"] for a in mine][:6] == ["call_next", "transfer", "call_next", "served",
                                             "pause_counter", "call_next"]
    assert all(a["actor"] == {"source": "hall", "role": "counter", "clerk": "c07",
                              "counter": "3"} for a in mine)
    transferred = [e["data"] for e in booth.events("ticket.closed")
                   if e["data"].get("number") == second]
    assert transferred and transferred[-1]["state"] == "served"
    assert not booth.cmd("get_status")["status"]["uplink"]["connected"]  # all without MQTT
    page.context.close()


def test_a_rating_on_the_pad_becomes_an_event_and_a_bad_one_opens_a_callback(
        booth: Booth) -> None:
    pad = booth.page("/rate", 1280, 800)
    wait_js(pad, "() => document.querySelector('select[name=counter] option')")
    sign_in(pad, "c07", USERS["c07"][1], "3")
    # idle, or already showing the ticket the previous test served here (within its timeout)
    wait_js(pad, "() => document.getElementById('pad-state') || "
                 "document.getElementById('pad-ticket')")
    assert booth.cmd("manual_ticket", service="general")["ok"]
    ticket = booth.cmd("call_next", counter="3", services=["general"])["ticket"]
    assert booth.cmd("served", counter="3")["ok"]  # as the clerk's terminal does
    wait_js(pad, "(n) => (document.getElementById('pad-ticket') || {}).textContent === n",
            arg=ticket["number"])
    pad.click("button[data-level=very_dissatisfied]")
    pad.click("button[data-reason=一次没办成]")
    booth.shot(pad, "rate")
    pad.click("#submit-rating")
    wait_js(pad, "() => " + text_of("pad-state") + ".includes('感谢')")
    rating = next(e["data"] for e in booth.events("rating")
                  if e["data"]["ticket_id"] == ticket["ticket_id"])
    assert (rating["level"], rating["reason"], rating["counter"], rating["service"],
            rating["source"]) == ("very_dissatisfied", "一次没办成", "3", "general", "pad")
    callback = next(e["data"] for e in booth.events("callback")
                    if e["data"]["case_id"] == rating["case_id"])
    assert callback["state"] == "open" and callback["number"] == ticket["number"]
    # the pad rates only the ticket just served here; the QR page gets the same kind of event
    again = pad.evaluate("""(t) => fetch('/api/rate', {method: 'POST', headers: {
        'content-type': 'application/json', 'x-csrf-token': document.body.dataset.csrf},
        body: JSON.stringify({ticket_id: 'A999', level: 'satisfied'})}).then((r) => r.status)""",
                         ticket["ticket_id"])
    assert again == 409
    pad.context.close()
    assert booth.cmd("manual_ticket", service="general")["ok"]
    other = booth.cmd("call_next", counter="4", services=["general"])["ticket"]
    assert booth.cmd("served", counter="4")["ok"]
    qr = booth.page(f"/r?t={other['ticket_id']}", 412, 860)
    wait_js(qr, "() => document.querySelector('button[data-level=satisfied]')")
    qr.click("button[data-level=satisfied]")
    qr.click("#submit-rating")
    wait_js(qr, "() => " + text_of("qr-msg") + ".includes('感谢')")
    booth.shot(qr, "rate-qr")
    got = [e["data"] for e in booth.events("rating") if e["data"]["ticket_id"] ==
           other["ticket_id"]]
    assert [(g["source"], g["level"], g["case_id"]) for g in got] == [("qr", "satisfied", None)]
    qr.click("#submit-rating")  # once only
    wait_js(qr, "() => " + text_of("qr-msg") + ".includes('已评价')")
    qr.context.close()
