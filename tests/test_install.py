"""``scripts/install.sh`` into a staging root (DESTDIR: PID 1 is not systemd here, and this
machine's own users stay untouched): install, ``systemd-analyze verify`` on the installed
units, an upgrade with events waiting in the outbox (none lost, the edited config kept),
uninstall (data kept), purge.

Installs the real package into a fresh venv with pip (the registries are the only network it
uses), so this file takes a minute."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install.sh"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600),
              pytest.mark.skipif(os.geteuid() != 0, reason="install.sh runs as root")]

FILL = """
import sys
from pathlib import Path
from gated.config import OutboxConfig
from gated.state.events import EventType
from gated.state.loop import StateLoop
from gated.state.outbox import Outbox, ensure_schema
from gated.state.store import Store
store = Store(Path(sys.argv[1]), [ensure_schema])
store.open()
loop = StateLoop(store, Outbox(store, OutboxConfig(), "s", "b"))
loop.start()
for i in range(int(sys.argv[2])):
    loop.call(lambda b, i=i: b.emit(EventType.COMMAND, {"name": "fill", "i": i})).result()
loop.stop()
store.close()
"""


def install(destdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DESTDIR": str(destdir), "GATED_EXTRAS": "usb"}
    done = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def destdir() -> Iterator[Path]:
    """Outside pytest's tree: the privacy scan would read the installed sources."""
    path = Path(tempfile.mkdtemp(prefix="gated-destdir-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def ids(destdir: Path) -> tuple[int, int]:
    for line in (destdir / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "gated":
            return int(fields[2]), int(fields[3])
    raise AssertionError("no gated user")


def gated(destdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(destdir / "opt/gated/bin/gated"), *args], capture_output=True,
                          text=True, timeout=60)


def outbox(destdir: Path, cfg: Path) -> list[dict[str, object]]:
    done = gated(destdir, "outbox", "peek", "--json", "--limit", "1000", "-c", str(cfg))
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_install_upgrade_uninstall(destdir: Path) -> None:
    out = install(destdir).stdout
    assert "creating the system user gated" in out and "site key" in out
    uid, gid = ids(destdir)
    group = (destdir / "etc/group").read_text()
    for g in ("dialout", "video", "lp", "plugdev"):
        assert any(line.startswith(f"{g}:") and "gated" in line.split(":")[3].split(",")
                   for line in group.splitlines()), g
    etc, state = destdir / "etc/gated", destdir / "var/lib/gated"
    assert mode(etc) == 0o750 and (etc.stat().st_uid, etc.stat().st_gid) == (0, gid)
    assert mode(state) == 0o750 and (state.stat().st_uid, state.stat().st_gid) == (uid, gid)
    for name in ("gated.toml", "site.key"):
        f = etc / name
        assert mode(f) == 0o640 and (f.stat().st_uid, f.stat().st_gid) == (0, gid), name
    assert (etc / "gated.toml").read_text() == (ROOT / "config/gated.example.toml").read_text()
    assert os.readlink(destdir / "usr/local/bin/gated") == "/opt/gated/bin/gated"
    assert (destdir / "etc/udev/rules.d/99-gated.rules").exists()
    assert gated(destdir, "--version").stdout.startswith("gated ")

    # the installed units verify (the binary where the staging root has put it)
    units = destdir / "etc/systemd/system"
    for unit in ("gated.service", "gated-hall.service"):
        copy = destdir / unit
        copy.write_text((units / unit).read_text().replace(
            "/usr/local/bin/gated", str(destdir / "opt/gated/bin/gated")))
        done = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        copy.unlink()

    # local IT edits the config; events wait in the outbox (the broker is unreachable)
    cfg = etc / "gated.toml"
    edited = cfg.read_text().replace('state_dir = "/var/lib/gated"', f'state_dir = "{state}"')
    edited = edited.replace('key_file = "/etc/gated/site.key"', f'key_file = "{etc}/site.key"')
    cfg.write_text(edited)
    key = (etc / "site.key").read_bytes()
    fill = subprocess.run([str(destdir / "opt/gated/bin/python"), "-c", FILL, str(state), "25"],
                          capture_output=True, text=True, timeout=60)
    assert fill.returncode == 0, fill.stderr
    before = outbox(destdir, cfg)
    assert len(before) == 25
    assert gated(destdir, "check-config", "--no-files", str(cfg)).returncode == 0

    out = install(destdir).stdout  # the upgrade: the same command again
    assert "config: /etc/gated/gated.toml kept" in out and "creating the system user" not in out
    assert cfg.read_text() == edited and (etc / "site.key").read_bytes() == key
    assert outbox(destdir, cfg) == before  # every event, same ids, same order

    out = install(destdir, "--uninstall").stdout
    assert not (units / "gated.service").exists() and not (units / "gated-hall.service").exists()
    assert not (destdir / "opt/gated").exists() and not (destdir / "usr/local/bin/gated").exists()
    assert not (destdir / "etc/udev/rules.d/99-gated.rules").exists()
    assert cfg.read_text() == edited and (state / "gated.db").exists()  # data kept

    install(destdir, "--purge")
    assert not etc.exists() and not state.exists()
    assert "gated:" not in (destdir / "etc/passwd").read_text()
