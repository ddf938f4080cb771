"""An ESC/POS ticket printer served on a pty: parses what it receives, renders what it prints.

The driver opens ``sim.port`` (the pty slave) like ``/dev/ttyUSB0``. The sim tokenizes the
stream with ``drivers.escpos_printer.codec``, answers ``DLE EOT 1..4`` with real status bytes, sends
Epson automatic status back blocks on every change once ``GS a`` enabled them, and renders
each ticket (everything up to a cut) to ``ticket-NNNN.png`` and ``ticket-NNNN.txt`` in
``out_dir`` (``gated simulate`` points it at its own directory so a new user can look at the
tickets). ``tickets`` lists (png path or None, text) of every ticket printed.

Knobs (``set(...)`` or attributes): ``paper_near_end``, ``paper_out``, ``cover_open``,
``offline``, ``cutter_error``; ``garbage`` answers status requests with noise that breaks the
fixed status bits (a random byte that happened to look valid could not be told from a real
reply, on real hardware either); ``silent`` answers nothing; ``unplug()`` closes the pty;
``mid_ticket`` (one-shot) runs out of paper or unplugs at the next ticket's QR code, half way
through it. While it cannot print, the sim drops what it receives and counts the ticket in
``spoiled`` (a real printer may instead print the rest after the paper is changed).
``reply_delay_s`` makes it slow to answer a status request (a busy printer, a long cable).

Runs in its own thread; public methods are safe from other threads. Standalone:
``python -m drivers.sim.printer --out DIR`` prints the port and takes console commands.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from drivers.escpos_printer.codec import (
    Op,
    OpKind,
    StatusBits,
    StatusQuery,
    encode_asb,
    encode_status,
    is_asb_first,
    is_status_byte,
    tokenize,
)
from drivers.escpos_printer.encoding import TextEncoding
from drivers.sim.pty_sim import PtySim, run_console
from drivers.sim.ticket_render import TicketCanvas, find_font

log = structlog.get_logger(__name__)

KNOBS = ("paper_near_end", "paper_out", "cover_open", "offline", "cutter_error", "garbage",
         "silent")


_SETUP = frozenset({OpKind.INIT, OpKind.CHINESE_ON, OpKind.CHINESE_OFF, OpKind.ALIGN,
                    OpKind.SIZE, OpKind.BOLD, OpKind.PRINT_MODE, OpKind.QR_MODEL,
                    OpKind.QR_MODULE, OpKind.QR_ECC, OpKind.QR_STORE})


class MidTicket(enum.StrEnum):
    NONE = "none"
    PAPER_OUT = "paper_out"
    UNPLUG = "unplug"


@dataclass(frozen=True)
class RenderedTicket:
    png: Path | None
    text: str


class PrinterSim(PtySim):
    name = "printer_sim"

    def __init__(self, out_dir: Path | None = None, *, columns: int = 48,
                 font: Path | None = None, seed: int = 0,
                 encoding: TextEncoding = TextEncoding.GB18030,
                 chinese_at_init: bool = False, one_way: bool = False) -> None:
        """``encoding`` / ``chinese_at_init``: the printer's text (a GBK printer in Chinese
        mode from power-on needs no ``FS &``; a UTF-8 one must not get it); ``one_way``: a
        printer that never answers a status request (as ``silent``, for good)."""
        super().__init__()
        self.out_dir = out_dir
        self.columns = columns
        self.encoding = encoding
        self.chinese_at_init = chinese_at_init
        self.font = font or find_font()
        self.paper_near_end = False
        self.paper_out = False
        self.cover_open = False
        self.offline = False
        self.cutter_error = False
        self.garbage = False
        self.silent = one_way
        self.mid_ticket = MidTicket.NONE
        self.reply_delay_s = 0.0
        self.tickets: list[RenderedTicket] = []
        self.spoiled = 0
        self.status_requests = 0
        self.received = 0
        #: when each read of the driver's bytes came in (``perf_counter``), the newest 10,000,
        #: and when each ``ESC @`` (a ticket's first byte) did
        self.rx_log: deque[float] = deque(maxlen=10_000)
        self.init_log: deque[float] = deque(maxlen=10_000)
        self._read_at = 0.0
        self.asb_enabled = False
        self._canvas = self._new_canvas()
        self._spoiling = False
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._buf = b""  # received bytes not yet a whole operation

    def _new_canvas(self) -> TicketCanvas:
        return TicketCanvas(self.columns, encoding=self.encoding,
                            chinese_at_init=self.chinese_at_init)

    # ------------------------------------------------------------------ lifecycle
    def _on_start(self) -> None:
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self._buf = b""

    # ------------------------------------------------------------------ knobs
    def set(self, **knobs: bool) -> None:
        """Change knobs at once; with ASB enabled, a changed status is sent unasked."""
        with self._lock:
            before = self.status_bits()
            for name, value in knobs.items():
                if name not in KNOBS:
                    raise ValueError(f"unknown knob {name!r}; knobs: {', '.join(KNOBS)}")
                setattr(self, name, bool(value))
            if self.asb_enabled and self.status_bits() != before:
                self._send_asb()

    def status_bits(self) -> StatusBits:
        with self._lock:
            stopped = self.paper_out or self.cover_open or self.offline or self.cutter_error
            return StatusBits(online=not stopped, cover_open=self.cover_open,
                              stopped_paper_end=self.paper_out, error=self.cutter_error,
                              cutter_error=self.cutter_error,
                              paper_near_end=self.paper_near_end or self.paper_out,
                              paper_out=self.paper_out, feed_button=False,
                              unrecoverable=False, auto_recoverable=False)

    def can_print(self) -> bool:
        return bool(self.status_bits().online)

    def wait_tickets(self, count: int, timeout: float) -> bool:
        """Test helper: True once at least ``count`` tickets were rendered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.tickets) >= count:
                    return True
            time.sleep(0.01)
        return False

    # ------------------------------------------------------------------ the printer
    def _send_asb(self) -> None:
        if not self.silent:
            self._write(self._noise(4) if self.garbage else encode_asb(self.status_bits()))

    def _noise(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            b = self._rng.randrange(256)
            if not is_status_byte(b) and not is_asb_first(b):
                out.append(b)
        return bytes(out)

    def _status_reply(self, n: int) -> None:
        self.status_requests += 1
        if self.silent:
            return
        if n == 1 and self.reply_delay_s:  # once per DLE EOT 1..4 round
            time.sleep(self.reply_delay_s)
        if self.garbage:
            self._write(self._noise(1))
        elif n in (1, 2, 3, 4):
            self._write(bytes((encode_status(StatusQuery(n), self.status_bits()),)))

    def _on_data(self, data: bytes, read_at: float) -> bool:
        buf = self._buf + data
        ops, used = tokenize(buf)
        self._buf = buf[used:]
        with self._lock:
            self.received += len(data)
            self.rx_log.append(read_at)
            self._read_at = read_at
            for op in ops:
                if not self._apply(op):
                    self.stop()  # from the serving thread: closes the pty, returns at once
                    log.info("printer_sim_unplugged_mid_ticket")
                    return False
        return True

    def _apply(self, op: Op) -> bool:
        """One operation; False when the sim must unplug now."""
        if op.kind == OpKind.STATUS_REQUEST:
            self._status_reply(op.value)
            return True
        if op.kind == OpKind.ASB:
            self.asb_enabled = op.value != 0
            if self.asb_enabled:
                self._send_asb()
            return True
        if op.kind == OpKind.QR_STORE and self.mid_ticket != MidTicket.NONE:
            mid, self.mid_ticket = self.mid_ticket, MidTicket.NONE
            if mid == MidTicket.UNPLUG:
                return False
            self.set(paper_out=True)
        if op.kind == OpKind.INIT:
            self.init_log.append(self._read_at)
        if op.kind == OpKind.CUT:
            self._finish()
        elif op.kind in _SETUP:
            self._canvas.apply(op)  # prints nothing: applies even while stopped
        elif not self.can_print():
            self._spoiling = True  # this ticket is incomplete whatever comes next
        elif not self._spoiling:
            self._canvas.apply(op)
        return True

    def _finish(self) -> None:
        canvas, self._canvas = self._canvas, self._new_canvas()
        spoiled, self._spoiling = self._spoiling, False
        if spoiled:
            self.spoiled += 1
            log.info("printer_sim_ticket_spoiled", spoiled=self.spoiled)
            return
        if canvas.empty:
            return
        seq = len(self.tickets) + 1
        text = canvas.text()
        png: Path | None = None
        if self.out_dir is not None:
            png = self.out_dir / f"ticket-{seq:04d}.png"
            canvas.image(self.font).save(png)
            png.with_suffix(".txt").write_text(text, encoding="utf-8")
        self.tickets.append(RenderedTicket(png, text))
        log.info("printer_sim_ticket", seq=seq, png=str(png) if png else None)


def main() -> None:
    """Run the printer on a pty for manual tests; type ``help`` for the console commands."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--out", type=Path, default=Path("sim-tickets"),
                        help="where rendered tickets go (default ./sim-tickets)")
    parser.add_argument("--columns", type=int, default=48)
    args = parser.parse_args()
    with PrinterSim(args.out, columns=args.columns) as sim:
        print(f"printer on {sim.port}, tickets to {args.out}/; type help", flush=True)
        _console(sim)


def _console(sim: PrinterSim) -> None:
    knobs: dict[str, dict[str, bool]] = {
        "paper near": {"paper_near_end": True, "paper_out": False},
        "paper out": {"paper_out": True}, "paper ok": {"paper_out": False,
                                                       "paper_near_end": False},
        "cover open": {"cover_open": True}, "cover closed": {"cover_open": False},
        "offline": {"offline": True}, "online": {"offline": False},
        "cutter error": {"cutter_error": True}, "cutter ok": {"cutter_error": False},
        "garbage": {"garbage": True, "silent": False}, "silent": {"silent": True},
        "ok": {"garbage": False, "silent": False},
    }

    def status() -> str:
        on = [k for k in KNOBS if getattr(sim, k)]
        return (f"knobs {on or ['none']} asb {sim.asb_enabled} tickets {len(sim.tickets)} "
                f"spoiled {sim.spoiled}")

    def mid_paper_out() -> None:
        sim.mid_ticket = MidTicket.PAPER_OUT

    def setter(values: dict[str, bool]) -> Callable[[], None]:
        return lambda: sim.set(**values)

    run_console({**{k: setter(v) for k, v in knobs.items()}, "mid paper out": mid_paper_out},
                status)


if __name__ == "__main__":
    main()
