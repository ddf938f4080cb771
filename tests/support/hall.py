"""Run ``gated hall`` as a real process next to a real daemon, and drive its pages in Debian's
Chromium (headless, through Playwright; nothing is downloaded: the browser is /usr/bin/chromium).

``HallProcess`` starts ``python -m gated.app.cli hall -c FILE`` and waits until it answers
``/healthz``; its log goes to a file under the test's temporary directory (the privacy scan
reads it). ``add_hall_section`` appends a ``[hall]`` section with the test users to a
``SimBooth`` config; their PINs are in ``USERS``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from gated.hall import hash_secret

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
                 "--disable-dev-shm-usage"]
#: user -> (role, PIN, counters)
USERS: dict[str, tuple[str, str, list[str]]] = {
    "c07": ("counter", "2468", ["3"]), "c08": ("counter", "8642", []),
    "g01": ("guard", "1357", []), "adm": ("admin", "975310", [])}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def add_hall_section(config: Path, port: int, *, extra: str = "") -> None:
    lines = ["", "[hall]", f'listen = "127.0.0.1:{port}"', "signin_max_failures = 3",
             "signin_lockout_s = 60", "blink_s = 2", "",
             "[hall.counter_names]", '"3" = "3号窗口"', '"4" = "4号窗口"', "",
             "[hall.duty]"]
    lines += [f'{d} = "值班领导 王镇长"' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]
    lines += ["", "[hall.reception]", 'wed = "09:00-11:30 书记接访"', ""]
    for user, (role, pin, counters) in USERS.items():
        lines += [f"[hall.users.{user}]", f'role = "{role}"', f'secret = "{hash_secret(pin)}"',
                  f"counters = {json.dumps(counters)}", ""]
    text = config.read_text(encoding="utf-8")
    config.write_text(text + "\n".join(lines) + extra, encoding="utf-8")


class HallProcess:
    def __init__(self, config: Path, workdir: Path, port: int) -> None:
        self.config = config
        self.port = port
        self.log_path = workdir / "hall.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> HallProcess:
        return self._start(timeout, lambda: self.get("/healthz")[0] == 200)

    def start_tls(self, ctx: Any, timeout: float = 20.0) -> HallProcess:
        """Start a hall that serves HTTPS; ready when ``/healthz`` answers over TLS."""
        import http.client

        def ready() -> bool:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=2)
            try:
                conn.request("GET", "/healthz")
                return conn.getresponse().status == 200
            finally:
                conn.close()
        return self._start(timeout, ready)

    def _start(self, timeout: float, ready: Any) -> HallProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "gated.app.cli", "hall", "-c",
                                      str(self.config)], stdout=log, stderr=log,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gated hall exited {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            with contextlib.suppress(OSError):
                if ready():
                    return self
            time.sleep(0.05)
        raise TimeoutError(f"gated hall did not answer within {timeout} s:\n{self.log_tail()}")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return self.request("GET", path, None, headers)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """(status, parsed JSON or text) of one request; never raises for an HTTP error."""
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, raw, ctype = r.status, r.read(), r.headers.get("content-type", "")
        except urllib.error.HTTPError as e:
            status, raw, ctype = e.code, e.read(), e.headers.get("content-type", "")
        if "json" in ctype:
            return status, json.loads(raw)
        return status, raw.decode(errors="replace")

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def terminate(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"

    def __enter__(self) -> HallProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def browser_available() -> bool:
    return shutil.which(CHROMIUM) is not None
