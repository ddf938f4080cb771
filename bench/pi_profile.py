"""A Raspberry Pi-class booth emulated on a bigger box: one slow core and an SD card's fsync.

- CPU: a cgroup CPU quota (v2 ``cpu.max``, or v1 ``cpu.cfs_quota_us``/``cpu.cfs_period_us``)
  of ``cpu_share`` of one core over a short period (10 ms), so a process gets that share of one
  core's time, throttled within every period rather than once a second.
- Disk: ``fsync``/``fdatasync`` (what SQLite's ``synchronous=FULL`` commits call) delayed by
  ``fsync_ms`` with a small LD_PRELOAD shim this module compiles with gcc on first use.

What it does not emulate (say so next to any figure it produced): a Pi core is slower per
instruction *and* has a smaller cache and slower memory, while a quota only takes time away
(a burst that fits in the quota runs at full x86 speed, so short latencies look better than on
a Pi and throttled ones worse); SD card reads and non-synced writes are not slowed; the
architecture (aarch64 wheels, OpenCV's NEON paths) is not the Pi's.

Needs root (cgroup files) and gcc; ``PiProfile.available()`` says why not otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

static useconds_t delay_us(void) {
    const char *s = getenv("GATED_PI_FSYNC_US");
    return s ? (useconds_t)atol(s) : 0;
}

int fsync(int fd) {
    static int (*real)(int) = 0;
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    usleep(delay_us());
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int) = 0;
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    usleep(delay_us());
    return real(fd);
}
"""
V1_CPU = Path("/sys/fs/cgroup/cpu")
V2_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))


class PiProfile:
    """``with PiProfile() as pi:`` run a process with ``env=pi.env()`` and ``pi.add(pid)``."""

    def __init__(self, cpu_share: float = 0.25, period_us: int = 10_000,
                 fsync_ms: float = 5.0) -> None:
        self.cpu_share = cpu_share
        self.period_us = period_us
        self.fsync_ms = fsync_ms
        self._dir: Path | None = None
        self._cgroup: Path | None = None
        self._procs: Path | None = None
        self.shim: Path | None = None

    def describe(self) -> str:
        return (f"Pi profile: {self.cpu_share:.0%} of one core (cgroup quota, "
                f"{self.period_us / 1000:g} ms period), fsync +{self.fsync_ms:g} ms")

    @staticmethod
    def available() -> str | None:
        """None when the profile can be applied here, else why not."""
        if os.geteuid() != 0:
            return "needs root to write cgroup files"
        if shutil.which("gcc") is None:
            return "needs gcc to build the fsync shim"
        if not (V1_CPU / "cgroup.procs").exists() and not any(
                (r / "cgroup.controllers").exists() for r in V2_ROOTS):
            return "no cgroup cpu controller mounted"
        return None

    def __enter__(self) -> PiProfile:
        self._dir = Path(tempfile.mkdtemp(prefix="gated-pi-"))
        src = self._dir / "fsync_delay.c"
        src.write_text(SHIM_C)
        self.shim = self._dir / "fsync_delay.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(self.shim), str(src),
                        "-ldl"], check=True, capture_output=True)
        self._make_cgroup()
        return self

    def _make_cgroup(self) -> None:
        name = f"gated-pi-{uuid.uuid4().hex[:8]}"
        quota = int(self.period_us * self.cpu_share)
        if (V1_CPU / "cgroup.procs").exists():
            group = V1_CPU / name
            group.mkdir()
            (group / "cpu.cfs_period_us").write_text(str(self.period_us))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
            self._cgroup, self._procs = group, group / "cgroup.procs"
            return
        root = next(r for r in V2_ROOTS if (r / "cgroup.controllers").exists())
        if "cpu" not in (root / "cgroup.subtree_control").read_text().split():
            (root / "cgroup.subtree_control").write_text("+cpu")
        group = root / name
        group.mkdir()
        (group / "cpu.max").write_text(f"{quota} {self.period_us}")
        self._cgroup, self._procs = group, group / "cgroup.procs"

    def env(self) -> dict[str, str]:
        """Environment for a process to run with the slow disk."""
        assert self.shim is not None
        preload = " ".join(p for p in (str(self.shim), os.environ.get("LD_PRELOAD", "")) if p)
        return {"LD_PRELOAD": preload, "GATED_PI_FSYNC_US": str(int(self.fsync_ms * 1000))}

    def add(self, pid: int) -> None:
        """Move a running process (with all its threads) into the slow core."""
        assert self._procs is not None
        self._procs.write_text(str(pid))

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run by a shell that joins the cgroup first (so nothing runs fast)."""
        assert self._procs is not None
        return ["sh", "-c", f'echo $$ > "{self._procs}" && exec "$@"', "sh", *argv]

    def __exit__(self, *exc: object) -> None:
        if self._cgroup is not None:
            parent_procs = self._cgroup.parent / "cgroup.procs"
            for pid in self._procs.read_text().split() if self._procs else []:
                try:
                    parent_procs.write_text(pid)
                except OSError:
                    pass  # gone meanwhile
            try:
                self._cgroup.rmdir()
            except OSError:
                pass  # a straggler still in it; the group is removed with it
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
