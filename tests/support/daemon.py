"""Run ``gated run`` as a real process, the way systemd does (Type=notify, SIGTERM to stop).

``DaemonProcess`` listens on its own NOTIFY_SOCKET so a test (or a benchmark) can wait for
READY=1 exactly as systemd would, and keeps the daemon's stderr in a file under the test's
temporary directory, where the suite-wide privacy scan reads it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


class DaemonProcess:
    def __init__(self, config: Path, workdir: Path, *, extra_env: dict[str, str] | None = None,
                 ) -> None:
        self.config = config
        self.workdir = workdir
        self.log_path = workdir / "daemon.log"
        self.notify_path = workdir / "notify.sock"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self.notifications: list[str] = []
        self.seen: dict[str, float] = {}  # notification -> seconds after start
        self.started_at = 0.0

    def start(self) -> DaemonProcess:
        with contextlib.suppress(FileNotFoundError):
            self.notify_path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.notify_path))
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify_path), "PYTHONUNBUFFERED": "1",
               **self.extra_env}
        log = open(self.log_path, "ab")  # handed to the child, closed here after the fork
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "gated.app.cli", "run", "-c",
                                      str(self.config)], stdout=log, stderr=log, env=env,
                                     cwd=self.workdir)
        log.close()
        return self

    def wait_for(self, state: str, timeout: float = 20.0) -> float:
        """Seconds from start until the daemon sent ``state`` (e.g. "READY=1")."""
        assert self._sock is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if state in self.seen:
                return self.seen[state]
            self._sock.settimeout(max(0.01, min(0.2, deadline - time.monotonic())))
            try:
                msg = self._sock.recv(4096).decode()
            except TimeoutError:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n"
                                       f"{self.log_tail()}") from None
                continue
            self.notifications.append(msg)
            for part in msg.split("\n"):
                self.seen.setdefault(part, time.monotonic() - self.started_at)
        raise TimeoutError(f"no {state} within {timeout} s:\n{self.log_tail()}")

    def terminate(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"

    def close(self) -> None:
        self.kill()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
