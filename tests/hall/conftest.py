"""One real booth for the hall's browser tests: the daemon (``gated run``) on simulated devices
with its MQTT broker unreachable (the county link is down), a real ``gated hall`` process, and
Debian's Chromium driven by Playwright. Screenshots of every page go under pytest's temporary
directory (``screenshots/``), and to ``$GATED_SCREENSHOTS`` too when it is set (that is how
``docs/screenshots/`` is made)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gated.app.simulate import SimBooth
from gated.control import call
from tests.support.daemon import DaemonProcess
from tests.support.hall import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HallProcess,
    add_hall_section,
    browser_available,
    free_port,
)
from tests.support.polling import wait_for

# Spoken fast and once, so a burst of calls is announced in seconds, not a minute; the two
# counters serve both services.
FAST_VOICE = """
[queue]
counters = { "3" = ["general", "social"], "4" = ["general", "social"] }

[hall.voice]
engine = ["espeak-ng", "-v", "cmn", "-s", "320", "-w", "{out}", "{text}"]
repeat = 1
"""


@dataclass
class Booth:
    sim: SimBooth
    daemon: DaemonProcess
    hall: HallProcess
    browser: Any
    shots: Path

    @property
    def state(self) -> Path:
        return self.sim.directory / "state"

    def cmd(self, name: str, **args: Any) -> dict[str, Any]:
        reply: dict[str, Any] = call(self.state, name, args)
        return reply

    def events(self, etype: str) -> list[dict[str, Any]]:
        conn = sqlite3.connect(f"file:{self.state / 'gated.db'}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT body FROM events WHERE type = ? ORDER BY seq",
                                (etype,)).fetchall()
        finally:
            conn.close()
        return [json.loads(r[0]) for r in rows]

    def settled_commands(self) -> int:
        """The number of ``command`` audit events once no more are arriving (each is posted
        right after its reply, so a test that checks none was added waits for quiet first)."""
        import time

        n = len(self.events("command"))
        while True:
            time.sleep(0.3)
            m = len(self.events("command"))
            if m == n:
                return n
            n = m

    def page(self, path: str, width: int = 1280, height: int = 800) -> Any:
        context = self.browser.new_context(viewport={"width": width, "height": height},
                                           locale="zh-CN")
        page = context.new_page()
        page.goto(self.hall.url + path)
        return page

    def shot(self, page: Any, name: str) -> None:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path))
        target = os.environ.get("GATED_SCREENSHOTS")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(target) / path.name)


def wait_js(page: Any, expr: str, timeout_ms: float = 30_000, arg: Any = None) -> Any:
    """Wait until the page's ``expr`` (a JS function of ``arg``) is truthy. A function, not a
    string: the pages' CSP rightly forbids eval, which Playwright would use for a string.
    30 s: a request through the hall server and the daemon took over 10 s once on a box whose
    load average was 8 (another test suite beside this one)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        return page.wait_for_function(expr, arg=arg, timeout=timeout_ms).json_value()
    except PlaywrightTimeout:
        seen = page.evaluate("() => JSON.stringify({reply: window.hallLastReply, state: "
                             "window.hallState, text: document.body.innerText.slice(0, 600)})")
        raise AssertionError(f"timed out waiting for {expr}; the page: {seen}") from None


def sign_in(page: Any, user: str, pin: str, counter: str | None = None) -> None:
    page.fill("input[name=user]", user)
    page.fill("input[name=pin]", pin)
    if counter is not None:
        page.select_option("select[name=counter]", counter)
    page.click("form.signin button[type=submit]")


@pytest.fixture(scope="package")
def booth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booth]:
    if not browser_available():
        pytest.skip("Debian's chromium is not installed (scripts/test-all.sh installs it)")
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("hall")
    shots = tmp_path_factory.getbasetemp() / "screenshots"
    shots.mkdir(exist_ok=True)
    dead_broker = f"127.0.0.1:{free_port()}"  # nothing listens: the county link is down
    with SimBooth(tmp / "sim", mqtt=dead_broker) as sim:
        port = free_port()
        add_hall_section(sim.config_path, port, extra=FAST_VOICE)
        with DaemonProcess(sim.config_path, tmp) as daemon:
            daemon.wait_for("READY=1")
            wait_for(lambda: all(d["state"] == "ready" for d in call(
                sim.directory / "state", "get_status")["status"]["devices"].values()), 20,
                "every simulated device ready")
            with HallProcess(sim.config_path, tmp, port) as hall, sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    yield Booth(sim, daemon, hall, browser, shots)
                finally:
                    browser.close()
