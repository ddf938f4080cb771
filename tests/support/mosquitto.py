"""A real mosquitto on free loopback ports, configured the way a county broker would be.

``Broker`` writes its own config into a directory: a plain listener and a TLS listener (CA,
server and client certificates made here with the ``openssl`` CLI, plus a second, unrelated CA
for mismatch tests), a password file made with ``mosquitto_passwd``, an ACL that confines each
booth user to ``gated/v1/+/<username>/#``, and persistence so queued QoS 1 messages survive a
restart. It never touches the machine's own broker on 1883.

``start``/``stop``/``restart`` keep the same ports, so clients reconnect to the same address.
In a test session every started broker also gets the contract tap
(``tests.support.contract_check``): what booths of other processes publish on it is checked
against the MQTT contract.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import contract_check

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
CENTRE_USER = "centre"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing the broker uses: for TLS mismatch tests


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: Path) -> Certs:
    """CA, server (SAN 127.0.0.1/localhost) and client certificates, all short-lived RSA 2048."""
    d.mkdir(parents=True, exist_ok=True)
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-subj", f"/CN=gated test {ca}",
                 cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, cn in (("server", "localhost"), ("client", "booth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.pem",
                 "-extfile", f"{name}.ext", cwd=d)
    return Certs(ca=d / "ca.pem", server_cert=d / "server.pem", server_key=d / "server.key",
                 client_cert=d / "client.pem", client_key=d / "client.key",
                 other_ca=d / "other-ca.pem")


@dataclass
class Broker:
    """One mosquitto process; ``users`` maps username -> password (booth users = booth ids)."""

    directory: Path
    users: dict[str, str] = field(default_factory=lambda: {CENTRE_USER: "centre-pw"})
    message_size_limit: int = 64 * 1024
    #: event type the ACL refuses (PUBACK 0x87), to test refusals; None for benchmarks
    denied_event: str | None = "gate.inputs"
    port: int = 0
    tls_port: int = 0
    certs: Certs | None = None
    proc: subprocess.Popen[bytes] | None = None
    tap: contract_check.Tap | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.tls_port = self.tls_port or free_port()
        self.certs = make_certs(self.directory / "certs")
        self.log_path = self.directory / "mosquitto.log"
        self._write_passwords()
        self._write_acl()
        self._write_config()

    # ------------------------------------------------------------------ files
    def _write_passwords(self) -> None:
        path = self.directory / "passwd"
        path.unlink(missing_ok=True)
        for i, (user, pw) in enumerate(self.users.items()):
            args = [MOSQUITTO_PASSWD, "-b"] + (["-c"] if i == 0 else []) + [str(path), user, pw]
            subprocess.run(args, check=True, capture_output=True)
        self.passwd_path = path

    def _write_acl(self) -> None:
        self.acl_path = self.directory / "acl"
        self.acl_path.write_text(
            "# every booth: its own subtree only, plus lists pushed to the whole site\n"
            "pattern readwrite gated/v1/+/%u/#\n"
            "pattern read gated/v1/+/_site/#\n"
            + ("# a topic the broker refuses, to test PUBACK refusals\n"
               f"pattern deny gated/v1/+/%u/events/{self.denied_event}\n"
               if self.denied_event else "")
            + f"user {CENTRE_USER}\n"
            "topic readwrite gated/#\n")

    def _write_config(self) -> None:
        assert self.certs is not None
        c = self.certs
        self.config_path = self.directory / "mosquitto.conf"
        self.config_path.write_text(f"""\
user root
per_listener_settings false
allow_anonymous false
password_file {self.passwd_path}
acl_file {self.acl_path}
persistence true
persistence_location {self.directory}/
autosave_interval 3600
max_queued_messages 1000000
max_inflight_messages 100
message_size_limit {self.message_size_limit}
log_dest file {self.log_path}
log_type error
log_type warning
log_type notice
log_type information
connection_messages true

listener {self.port} 127.0.0.1

listener {self.tls_port} 127.0.0.1
cafile {c.ca}
certfile {c.server_cert}
keyfile {c.server_key}
require_certificate true
""")

    # ------------------------------------------------------------------ process
    def start(self, timeout: float = 10.0) -> Broker:
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config_path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                self.proc = None
                raise RuntimeError(f"mosquitto exited at start: {err}\n{self.log_tail()}")
            if _accepts(self.port) and _accepts(self.tls_port):
                self.tap = contract_check.attach_tap(self.port, CENTRE_USER,
                                                     self.users[CENTRE_USER])
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen within {timeout}s\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM): mosquitto saves sessions and queued messages first."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        tap, self.tap = self.tap, None
        if tap is not None:
            tap.stop()
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def restart(self, *, forget_sessions: bool = False) -> None:
        """Stop and start again. ``forget_sessions`` deletes the persistence file in between,
        as a broker rebuilt or replaced by the centre would come back: no client's
        subscriptions or queued messages survive, so a client that relied on its persistent
        session would hear nothing any more."""
        self.stop()
        if forget_sessions:
            (self.directory / "mosquitto.db").unlink(missing_ok=True)
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    def add_user(self, user: str, password: str) -> None:
        """Add a user; takes effect at the next (re)start."""
        self.users[user] = password
        self._write_passwords()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def env_has_mosquitto() -> bool:
    return os.access(MOSQUITTO, os.X_OK) and os.access(MOSQUITTO_PASSWD, os.X_OK)
