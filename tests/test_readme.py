"""What the README says about names the code emits stays true: every alarm kind is listed."""

from __future__ import annotations

import re
from pathlib import Path

from drivers.base import GateAlarmKind, PrinterStatus

ROOT = Path(__file__).resolve().parents[1]


def _alarm_kinds() -> set[str]:
    literal = set()
    for path in (ROOT / "gated").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for block in re.findall(r"EventType\.ALARM,\s*\{[^}]*", text):
            literal.update(re.findall(r'"kind":\s*"([a-z_]+)"', block))
        literal.update(re.findall(r'\{"kind":\s*"(state_job_[a-z]+)"', text))
    faults = {PrinterStatus(online=False, **{f: True}).fault for f in
              ("paper_out", "cover_open", "cutter_error")} | {PrinterStatus(online=False).fault}
    return (literal | {f"gate_{k}" for k in GateAlarmKind}
            | {f"printer_{f}" for f in faults if f})


def test_every_alarm_kind_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    kinds = _alarm_kinds()
    assert {"see_guard", "tailgating", "gate_jam", "printer_paper_out",
            "state_job_failing"} <= kinds
    missing = sorted(k for k in kinds if f"`{k}`" not in readme)
    assert not missing, f"alarm kinds the README does not list: {missing}"
