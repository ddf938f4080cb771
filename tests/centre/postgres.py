"""A real PostgreSQL from Debian's packages, on a free loopback port with its own data directory.

It never touches the machine's own cluster (5432) or its sockets: ``initdb`` makes a fresh
cluster in a temporary directory, ``pg_ctl`` starts it with ``listen_addresses=127.0.0.1``,
its own port and its own socket directory, and ``stop`` removes everything. PostgreSQL refuses
to run as root, and CI runs as root: then the cluster belongs to the ``postgres`` user
(created by Debian's postgresql-common) and every server command runs through ``runuser``.
Clients connect over TCP as the superuser ``postgres`` with trust authentication (loopback,
a throwaway cluster).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.mosquitto import free_port


def pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<v>/bin`` with initdb, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def env_has_postgres() -> bool:
    if pg_bin() is None:
        return False
    if os.geteuid() != 0:
        return True
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return shutil.which("runuser") is not None


@dataclass
class Postgres:
    """One throwaway cluster; ``dsn(db)`` for clients, ``create_db`` for a fresh database."""

    port: int = 0
    settings: dict[str, str] = field(default_factory=dict)
    directory: Path = field(init=False)
    running: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        bindir = pg_bin()
        assert bindir is not None, "PostgreSQL is not installed"
        self.bin = bindir
        # Under /tmp, not pytest's 0700 tree: the postgres user must reach its data directory.
        self.directory = Path(tempfile.mkdtemp(prefix="gated-pg-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.directory, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=True, cwd=self.directory)

    def start(self) -> Postgres:
        if not self.data.exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        opts = {"listen_addresses": "127.0.0.1", "port": str(self.port),
                "unix_socket_directories": str(self.directory), "max_connections": "60",
                **self.settings}
        o = " ".join(f"-c {k}={v}" for k, v in opts.items())
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log_path),
                  "-o", o, "-w", "-t", "60", "start")
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
            self.running = False

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def dsn(self, db: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={db}"

    def create_db(self, prefix: str = "t") -> str:
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def dump(self, db: str, out: Path) -> None:
        """Every row of ``db`` as SQL text (pg_dump --data-only), e.g. for the privacy scan."""
        subprocess.run([str(self.bin / "pg_dump"), "--data-only", "-h", "127.0.0.1", "-p",
                        str(self.port), "-U", "postgres", "-f", str(out), db],
                       check=True, capture_output=True, timeout=60)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""
