"""What every benchmark shares: one way to report a figure next to its baseline, and the
``--profile`` switch for benchmarks that run ``gated run`` as a process.

``figure(...)`` prints one aligned line and, when ``GATED_BENCH_JSON`` names a file (``bench/run``
sets it), appends the same figure to it as a JSON line, so ``bench/run`` can put every
benchmark of both profiles in one table without parsing prose.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pi_profile import PiProfile

JSON_ENV = "GATED_BENCH_JSON"
PROFILE_ENV = "GATED_BENCH_PROFILE"  # "host" or "pi": which profile the figures were taken in


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {"p50": statistics.median(ms) if ms else float("nan"), "p99": percentile(ms, 99),
            "max": max(ms) if ms else float("nan"), "n": len(ms)}


def figure(bench: str, name: str, value: float | str, unit: str = "", *,
           baseline: float | str | None = None, baseline_name: str = "",
           target: str = "", note: str = "") -> None:
    """Print a figure (and record it for ``bench/run``)."""
    def fmt(v: float | str | None) -> str:
        if v is None:
            return ""
        return f"{v:,.3g}" if isinstance(v, float) and abs(v) < 1000 else (
            f"{v:,.0f}" if isinstance(v, float) else str(v))
    line = f"{name:<58} {fmt(value):>10} {unit:<8}"
    if baseline is not None:
        line += f"  baseline {baseline_name}: {fmt(baseline)} {unit}"
    if target:
        line += f"  (target {target})"
    if note:
        line += f"  [{note}]"
    print(line, flush=True)
    path = os.environ.get(JSON_ENV)
    if path:
        record: dict[str, Any] = {"bench": bench, "profile": os.environ.get(PROFILE_ENV, "host"),
                                  "figure": name, "value": value, "unit": unit,
                                  "baseline": baseline, "baseline_name": baseline_name,
                                  "target": target, "note": note}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def latency_figures(bench: str, name: str, samples_s: Sequence[float], *,
                    baseline_s: Sequence[float] | None = None, baseline_name: str = "",
                    target_p50: str = "", target_p99: str = "", note: str = "") -> None:
    """Two figures, p50 and p99 in ms, each next to the same percentile of the baseline."""
    s = summary_ms(samples_s)
    b = summary_ms(baseline_s) if baseline_s else None
    n = f"n={s['n']}" + (f", {note}" if note else "")
    figure(bench, f"{name}, p50", s["p50"], "ms", baseline=b["p50"] if b else None,
           baseline_name=baseline_name, target=target_p50, note=n)
    figure(bench, f"{name}, p99", s["p99"], "ms", baseline=b["p99"] if b else None,
           baseline_name=baseline_name, target=target_p99, note=f"max {s['max']:.3g} ms")


# --------------------------------------------------------------------- daemon-as-a-process helpers
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _per_thread(pid: int, file: str) -> Iterator[str]:
    """The text of ``/proc/<pid>/task/<tid>/<file>`` for each thread still there."""
    task = Path(f"/proc/{pid}/task")
    for tid in os.listdir(task):
        try:
            yield (task / tid / file).read_text()
        except OSError:
            continue  # the thread ended meanwhile


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of ``pid`` by its kernel name (threads of
    one name summed: ``gated-ctl-conn`` comes and goes). Read from ``/proc``, so it measures
    the process from outside, as ``top -H`` does."""
    out: dict[str, float] = {}
    for stat in _per_thread(pid, "stat"):
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def thread_wakeups(pid: int) -> dict[str, int]:
    """Context switches (voluntary and not) of each thread of ``pid`` by its kernel name: how
    often each was put to sleep and woken. On a VM a wake-up costs about 0.1 ms of CPU by
    itself, so this, more than the Python run between wake-ups, sets an idle booth's CPU."""
    out: dict[str, int] = {}
    for status in _per_thread(pid, "status"):
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        name = fields["Name"].strip()
        out[name] = out.get(name, 0) + int(fields["voluntary_ctxt_switches"]) + int(
            fields["nonvoluntary_ctxt_switches"])
    return out


def process_cpu(pid: int) -> float:
    """CPU seconds of the whole process, including threads that have ended."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


def unwire_buttons(config_path: Path) -> None:
    """The simulated booth's config without visitor buttons (the default config: a quiet gate
    is then read once a second; with a button wired, ten times)."""
    text = config_path.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines(keepends=True)
             if not ln.startswith("inputs = { assist_button")]
    config_path.write_text("".join(lines), encoding="utf-8")


def devices_ready(state: Path, limit: float = 30.0) -> None:
    """Wait until the daemon reports every device ready (over its control socket)."""
    from gated.control import ControlError, call

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(ControlError):
            devices = call(state, "get_status")["status"]["devices"]
            if all(d["state"] == "ready" for d in devices.values()):
                return
        time.sleep(0.2)
    raise TimeoutError("devices not ready")


@contextlib.contextmanager
def profile(name: str) -> Iterator[PiProfile | None]:
    """``--profile host`` (nothing) or ``pi`` (a ``PiProfile`` the caller adds its daemon to)."""
    if name != "pi":
        yield None
        return
    why = PiProfile.available()
    if why:
        raise SystemExit(f"Pi profile not available here: {why}")
    with PiProfile() as pi:
        yield pi
