"""Ticket bytes and layout time per ticket, next to baselines measured in the same run.

Figures: the size of one ticket's ESC/POS bytes (``render_ticket``) and the time to build them,
against (a) the same ticket's text encoded GB18030 with no commands at all (the floor), and
(b) python-escpos's Dummy printer building the same ticket (when it is installed). Also the
time the bytes take on the wire at the configured baud rate, and the simulator's PNG render
per ticket. Plain script: ``.venv/bin/python bench/bench_printer.py``; exits 0 regardless.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import figure

from drivers.escpos_printer.codec import tokenize
from drivers.escpos_printer.layout import render_ticket, ticket_text
from drivers.sim.ticket_render import TicketCanvas, find_font
from gated.booth.ticket import TicketInfo, ticket_document
from gated.config import GatedConfig


def docs(n: int) -> list[dict[str, Any]]:
    cfg = GatedConfig.model_validate({
        "site": {"id": "town-1", "hall_name": "青山镇便民服务中心"},
        "booth": {"id": "east", "name": "东门"},
        "ticket": {"print_masked_name": True, "footer": "请留意叫号，过号请到首问负责台"}})
    now = datetime(2026, 3, 2, 1, 5, tzinfo=UTC)
    return [ticket_document(cfg, TicketInfo(
        ticket_id=f"01J9ZK3T7Q{i:06d}", number=f"A{i % 1000:03d}", service_name="社保医保",
        issued_at=now, ahead=i % 30, wait_min=(i % 30) * 8, priority=i % 5 == 0,
        priority_label="优先" if i % 5 == 0 else "", masked_name="张*")) for i in range(n)]


def python_escpos(doc: dict[str, Any], columns: int, module: int) -> bytes:
    from escpos.printer import Dummy
    p = Dummy()
    p._raw(b"\x1b\x40\x1c\x26")  # python-escpos has no Chinese mode: raw FS &
    def line(s: str, **style: Any) -> None:
        if s:
            p.set(align="center", **style)
            p._raw(s.encode("gb18030") + b"\n")
    line(doc["hall_name"], bold=True)
    line(doc["booth_name"])
    p._raw(b"-" * columns + b"\n")
    line(doc["service"], custom_size=True, width=2, height=2)
    line(doc["number"], custom_size=True, width=4, height=4, bold=True)
    if doc["priority"]:
        line(f"【{doc['priority_mark']}】", custom_size=True, width=2, height=2, bold=True)
    line(f"前面还有 {doc['ahead']} 人", normal_textsize=True)
    line(f"预计等候约 {doc['wait_min']} 分钟")
    line(f"取号时间 {doc['time']}")
    line(f"姓名 {doc['masked_name']}")
    p._raw(b"-" * columns + b"\n")
    p.qr(doc["rating_url"], native=True, size=module, ec=1)
    line(doc["rating_label"])
    p._raw(b"-" * columns + b"\n")
    line(f"{doc['hotline_label']} {doc['hotline_number']}", bold=True)
    line(f"如有疑问请到 {doc['first_responder']}")
    line(doc["footer"])
    p._raw(b"\x1b\x64\x04")
    p.cut(mode="PART")
    return bytes(p.output)


def per_ticket_us(fn: Callable[[dict[str, Any]], Any], items: list[dict[str, Any]],
                  repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for d in items:
            fn(d)
        runs.append((time.perf_counter() - t0) / len(items) * 1e6)
    return statistics.median(runs)


BENCH = "printer"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--tickets", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--columns", type=int, default=48)
    ap.add_argument("--module", type=int, default=6)
    ap.add_argument("--baud", type=int, default=9600)
    args = ap.parse_args()
    items = docs(args.tickets)
    cols, mod = args.columns, args.module

    def ours(d: dict[str, Any]) -> bytes:
        return render_ticket(d, cols, mod)

    def floor(d: dict[str, Any]) -> bytes:
        return ticket_text(d).encode("gb18030")

    rows: list[tuple[str, float, float]] = [
        ("render_ticket (ESC/POS, ours)", statistics.mean(len(ours(d)) for d in items),
         per_ticket_us(ours, items, args.repeat)),
        ("baseline: plain GB18030 text", statistics.mean(len(floor(d)) for d in items),
         per_ticket_us(floor, items, args.repeat))]
    try:
        python_escpos(items[0], cols, mod)
    except ImportError:
        print("python-escpos not installed: its baseline is skipped")
    else:
        def ref(d: dict[str, Any]) -> bytes:
            return python_escpos(d, cols, mod)
        rows.append(("baseline: python-escpos Dummy, same ticket",
                     statistics.mean(len(ref(d)) for d in items),
                     per_ticket_us(ref, items, args.repeat)))
    print(f"{args.tickets} tickets, median of {args.repeat} runs, {cols} columns, "
          f"QR module {mod}")
    print(f"{'':46} {'bytes/ticket':>12} {'µs/ticket':>10} {'wire ms @' + str(args.baud):>14}")
    for name, size, us in rows:
        wire_ms = size * 10 / args.baud * 1000  # 8N1: 10 bits a byte
        print(f"{name:46} {size:12.0f} {us:10.1f} {wire_ms:14.0f}")
    ours_row, base_row = rows[0], rows[-1]
    figure(BENCH, "render_ticket (ESC/POS) per ticket", ours_row[2], "us",
           baseline=base_row[2], baseline_name=base_row[0].removeprefix("baseline: "))
    figure(BENCH, f"ticket bytes (wire ms at {args.baud} baud)", ours_row[1], "bytes",
           baseline=base_row[1], baseline_name=base_row[0].removeprefix("baseline: "),
           note=f"{ours_row[1] * 10 / args.baud * 1000:.0f} ms on the wire")

    font = find_font()
    sample = items[: min(20, len(items))]
    t0 = time.perf_counter()
    for d in sample:
        canvas = TicketCanvas(cols)
        for op in tokenize(ours(d), final=True)[0]:
            canvas.apply(op)
        canvas.image(font)
    png_ms = (time.perf_counter() - t0) / len(sample) * 1000
    t0 = time.perf_counter()
    for d in sample:
        tokenize(ours(d), final=True)
    parse_ms = (time.perf_counter() - t0) / len(sample) * 1000
    print(f"simulator: tokenize {parse_ms:.2f} ms/ticket (baseline), tokenize + PNG render "
          f"{png_ms:.1f} ms/ticket (font: {font or 'Pillow default'})")


if __name__ == "__main__":
    main()
