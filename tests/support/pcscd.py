"""A real pcscd with vsmartcard's vpcd reader driver, owned by the test session.

pcscd's socket (/run/pcscd/pcscd.comm) is compiled in, so only one pcscd can run per machine.
This module:

- serialises test runs on one machine with an flock, so two pytest sessions never fight over it;
- stops a pcscd that an earlier (killed) run of this fixture left behind — recognised by the
  pid recorded in ``OWNER_FILE`` and its ``--config`` pointing into a directory we made;
- removes stale socket/pid files of a pcscd that died;
- if a pcscd it did not start is running (a system service, one started by hand), does not
  touch it: it borrows it when it serves a vpcd reader (``owned`` is False, so ``restart()``
  refuses and the tests that need it skip), and fails with instructions otherwise;
- otherwise starts ``pcscd --foreground --config <tmp dir>`` with a private copy of
  /etc/reader.conf.d/vpcd on a free port pair (vpcd slot 0 = port, slot 1 = port + 1), so a
  vpcd on the default 35963 elsewhere cannot clash.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

VPCD_SYSTEM_CONF = Path("/etc/reader.conf.d/vpcd")
VPCD_DEFAULT_PORT = 35963
READER_0 = "Virtual PCD 00 00"
PCSCD_PID_FILE = Path("/run/pcscd/pcscd.pid")
PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
LOCK_FILE = Path(tempfile.gettempdir()) / "gated-tests-pcscd.lock"
OWNER_FILE = Path(tempfile.gettempdir()) / "gated-tests-pcscd.owner"
CONF_PREFIX = "gated-pcscd-"


def binaries_missing() -> str | None:
    """Why the real stack cannot run here, or None when pcscd and vpcd are installed."""
    if shutil.which("pcscd") is None and not Path("/usr/sbin/pcscd").exists():
        return "pcscd is not installed (apt-get install pcscd)"
    if not VPCD_SYSTEM_CONF.exists():
        return f"{VPCD_SYSTEM_CONF} missing (apt-get install vsmartcard-vpcd)"
    if vpcd_conf_value("LIBPATH") is None:
        return f"{VPCD_SYSTEM_CONF} names no LIBPATH"
    return None


def vpcd_conf_value(key: str, path: Path = VPCD_SYSTEM_CONF) -> str | None:
    for line in path.read_text().splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] == key:
            return parts[1].strip().strip('"')
    return None


def system_vpcd_port() -> int:
    dev = vpcd_conf_value("DEVICENAME") or ""
    _, _, port = dev.rpartition(":")
    return int(port, 0) if port else VPCD_DEFAULT_PORT


def free_port_pair() -> int:
    """A port p with p and p + 1 both free on all interfaces (vpcd binds 0.0.0.0)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("", port + 1))
                except OSError:
                    continue
            return int(port)
    raise RuntimeError("no free port pair for vpcd")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not Path(f"/proc/{pid}/status").read_text().count("State:\tZ")


def running_pcscd() -> int | None:
    """Pid of the live pcscd named in /run/pcscd/pcscd.pid, None if none runs."""
    try:
        pid = int(PCSCD_PID_FILE.read_text().strip("\0\n "))
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []


class Pcscd:
    """pcscd + vpcd. ``port``: vpcd port of ``READER_0``; ``owned`` False = borrowed."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.conf_dir = workdir / "reader.conf.d"
        self.log_path = workdir / "pcscd.log"
        self.port = free_port_pair()
        self.owned = True
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, *, vpcd: bool = True, timeout: float = 10.0) -> None:
        """Start pcscd (with or without the vpcd reader) and wait until it answers."""
        if not self.owned:
            raise RuntimeError("borrowed pcscd: not started by these tests")
        self._clear_leftovers()
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        conf = self.conf_dir / "vpcd"
        if vpcd:
            libpath = vpcd_conf_value("LIBPATH")
            conf.write_text(
                f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:{self.port}\n'
                f"LIBPATH {libpath}\nCHANNELID {self.port}\n")
        else:
            conf.unlink(missing_ok=True)
        log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            ["pcscd", "--foreground", "--config", str(self.conf_dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        OWNER_FILE.write_text(f"{self._proc.pid}\n{self.conf_dir}\n")
        self.wait_ready(vpcd=vpcd, timeout=timeout)

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        OWNER_FILE.unlink(missing_ok=True)
        self._wait_gone(timeout)

    def restart(self, *, vpcd: bool = True) -> None:
        """Stop and start again: every client's context dies (SCARD_E_NO_SERVICE)."""
        self.stop()
        self.start(vpcd=vpcd)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else running_pcscd()

    # ------------------------------------------------------------------ helpers
    def readers(self) -> list[str] | None:
        """Reader names as pyscard lists them; None when pcscd does not answer."""
        from smartcard import scard

        rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if rc != scard.SCARD_S_SUCCESS:
            return None
        try:
            rc, names = scard.SCardListReaders(ctx, [])
            if rc == scard.SCARD_E_NO_READERS_AVAILABLE:
                return []
            if rc != scard.SCARD_S_SUCCESS:
                return None
            return list(names)
        finally:
            scard.SCardReleaseContext(ctx)

    def wait_ready(self, *, vpcd: bool = True, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"pcscd exited with {self._proc.returncode}: "
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            names = self.readers()
            if names is not None and (READER_0 in names if vpcd else True):
                return
            time.sleep(0.05)
        raise RuntimeError(f"pcscd did not list {READER_0!r} within {timeout} s")

    def _wait_gone(self, timeout: float) -> None:
        """After our pcscd exited: drop the files a SIGKILLed one leaves behind."""
        deadline = time.monotonic() + timeout
        while running_pcscd() is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        if running_pcscd() is None:
            for stale in (PCSCD_SOCKET, PCSCD_PID_FILE):
                stale.unlink(missing_ok=True)

    def _clear_leftovers(self) -> None:
        """Stop our own orphan from a killed run; remove files of a dead pcscd."""
        pid = running_pcscd()
        if pid is not None:
            recorded = OWNER_FILE.read_text().split() if OWNER_FILE.exists() else []
            cmd = _cmdline(pid)
            ours = (recorded[:1] == [str(pid)]
                    and any(CONF_PREFIX in part for part in cmd))
            if not ours:
                raise RuntimeError(
                    f"pcscd pid {pid} ({' '.join(cmd)}) was not started by these tests; "
                    "stop it first (e.g. `systemctl stop pcscd.socket pcscd`)")
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
            orphan_dir = Path(recorded[1]).parent if len(recorded) > 1 else None
            if orphan_dir is not None and orphan_dir.name.startswith(CONF_PREFIX):
                shutil.rmtree(orphan_dir, ignore_errors=True)
        if running_pcscd() is None:
            for stale in (PCSCD_SOCKET, PCSCD_PID_FILE):
                stale.unlink(missing_ok=True)


@contextlib.contextmanager
def _machine_lock(timeout: float = 120.0) -> Iterator[None]:
    fd = os.open(LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another test run holds {LOCK_FILE}") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def _foreign_pcscd() -> int | None:
    """Pid of a live pcscd this fixture did not start (orphans of ours are not foreign)."""
    pid = running_pcscd()
    if pid is None:
        return None
    recorded = OWNER_FILE.read_text().split() if OWNER_FILE.exists() else []
    if recorded[:1] == [str(pid)] and any(CONF_PREFIX in p for p in _cmdline(pid)):
        return None
    return pid


@contextlib.contextmanager
def pcscd_service() -> Iterator[Pcscd]:
    """Context manager behind the ``pcscd`` fixture; see the module docstring."""
    with _machine_lock(), tempfile.TemporaryDirectory(prefix=CONF_PREFIX) as tmp:
        service = Pcscd(Path(tmp))
        foreign = _foreign_pcscd()
        if foreign is not None:
            service.owned = False
            service.port = system_vpcd_port()
            names = service.readers() or []
            if READER_0 not in names:
                raise RuntimeError(
                    f"pcscd pid {foreign} runs without the vpcd reader ({names}); stop it "
                    "(e.g. `systemctl stop pcscd.socket pcscd`) so the tests start their own")
            yield service
            return
        service.start()
        try:
            yield service
        finally:
            service.stop()

