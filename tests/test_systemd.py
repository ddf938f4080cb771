"""The systemd units the project ships: they verify, and their exposure stays at 2.5 or lower
(``systemd-analyze security --offline``), so hardening cannot quietly regress."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNITS = sorted((ROOT / "systemd").glob("*.service"))
EXPOSURE_MAX = 25  # tenths: 2.5

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is not installed")


def test_there_are_units() -> None:
    assert UNITS and (ROOT / "systemd" / "gated.service") in UNITS


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_exposure_is_at_most_2_5(unit: Path) -> None:
    done = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                           f"--threshold={EXPOSURE_MAX}", str(unit)],
                          capture_output=True, text=True, timeout=60)
    overall = [line for line in done.stdout.splitlines() if "Overall exposure" in line]
    assert done.returncode == 0, f"{unit.name}: {overall or done.stdout[-2000:]}"


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_verifies(unit: Path, tmp_path: Path) -> None:
    """``systemd-analyze verify`` wants the binaries to exist: the installed path is swapped
    for this environment's ``gated``."""
    gated = Path(sys.executable).parent / "gated"
    if not gated.exists():
        pytest.skip("gated is not installed in this interpreter's environment")
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace("/usr/local/bin/gated", str(gated)))
    done = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Unknown" not in done.stderr and "is deprecated" not in done.stderr, done.stderr


def test_the_daemon_runs_under_the_units_settings(tmp_path: Path) -> None:
    """The whole daemon (``gated simulate``: the real daemon on simulated devices, a few
    seconds) under the unit's sandbox and system-call filter. Only where systemd runs the
    machine (a booth, a VM), not in this CI's containers."""
    comm = Path("/proc/1/comm").read_text().strip() if Path("/proc/1/comm").exists() else ""
    if comm != "systemd":
        pytest.skip(f"PID 1 is {comm!r}, not systemd: systemd-run cannot start a transient "
                    f"unit with these properties here")
    props = [line.strip() for line in (ROOT / "systemd/gated.service").read_text().splitlines()
             if "=" in line and not line.startswith(("#", "Exec", "Description", "After",
                                                       "Wants", "Documentation", "WantedBy",
                                                       "Type", "NotifyAccess", "Restart",
                                                       "Watchdog", "TimeoutStop", "User",
                                                       "Group", "Supplementary",
                                                       "StateDirectory", "Configuration"))]
    cmd = ["systemd-run", "--wait", "--collect", "--quiet", "--pipe",
           "-p", f"ReadWritePaths={tmp_path}", "-p", "PrivateTmp=no"]
    for prop in props:
        cmd += ["-p", prop]
    done = subprocess.run([*cmd, sys.executable, "-m", "gated", "simulate", "--dir",
                           str(tmp_path / "sim"), "--duration", "5", "--mqtt", "off"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "simulation stopped" in done.stdout
