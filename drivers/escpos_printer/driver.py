"""ESC/POS ticket printer on a serial line, a USB printer-class device or a network printer's
raw port (PROTOCOLS.md section 3; transports: ``drivers.escpos_printer.transports``).

Own thin layer over pyserial rather than python-escpos: its serial transport opens
``serial.Serial`` (no ``serial_for_url``: no ``spy://`` traces, no ``loop://``), reads a silent
printer as "paper adequate", never sends ``FS &`` and has no automatic status back.

Behaviour the core can rely on:
- ``open()`` initialises the printer (``ESC @``, ``FS &``; ``GS a`` when ``auto_status_back``)
  and asks all four ``DLE EOT`` status bytes; no answer is ``DeviceTimeout``. The first
  ``poll()`` reports the status found.
- ``poll()`` asks the status every ``status_interval_s`` (and reads automatic status back
  blocks as they come) and returns a ``PrinterStatus`` on every change. ``fault`` is one of
  ``paper_out``, ``cover_open``, ``cutter_error``, ``offline`` (that order) while the printer
  cannot print, so the supervisor shows DEGRADED; paper near end is reported, not a fault.
- ``execute(print)`` checks the status first and does not send a byte when the printer cannot
  print (``CommandDone(ok=False, detail=<fault>)``). Otherwise it sends the ticket, waits
  ``print_settle_ms`` and checks again: ``ok=True`` (detail ``printed``) only when the printer
  stayed online with paper. A ticket that ran out of paper half-way is reported failed, so
  the core reprints it: one ticket too many is better than one lost.
- Garbled replies are ``ProtocolError``, silence ``DeviceTimeout``, a vanished port
  (unplugged, pty closed) ``DeviceUnavailable``.
- ``status = "none"`` (a one-way printer that never answers ``DLE EOT``): never refused.
  ``open()`` only initialises it; ``blind`` is set, so the supervisor publishes UNKNOWN rather
  than READY; every ticket is sent blind and answered ``ok`` with detail ``sent_unconfirmed``
  (the core counts it printed: paper out, cover open or a ticket cut short cannot be seen, so
  no reprint happens by itself). A transport that vanishes is still ``DeviceUnavailable``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import serial
import structlog

from drivers.base import (
    CommandDone,
    DeviceCommand,
    DeviceTimeout,
    DeviceUnavailable,
    Observation,
    PrinterStatus,
    ProtocolError,
    TicketPrinter,
)
from drivers.escpos_printer.codec import (
    StatusBits,
    StatusQuery,
    asb_enable,
    chinese,
    decode_asb,
    decode_status,
    init,
    split_replies,
    status_request,
)
from drivers.escpos_printer.encoding import TextEncoding
from drivers.escpos_printer.layout import QrMode, render_ticket
from drivers.escpos_printer.settings import PrinterSettings, describe
from drivers.escpos_printer.transports import open_transport
from drivers.serial_link import LINK_ERRORS

log = structlog.get_logger(__name__)

_STATUS_REQUEST = b"".join(status_request(n) for n in StatusQuery)
ASB_IDLE_SLICE_S = 0.05  # how often an idle poll looks for automatic status back bytes


class EscposPrinter(TicketPrinter):
    def __init__(self, name: str, config: PrinterSettings) -> None:
        super().__init__(name)
        self.config = config
        self._log = log.bind(device=name)
        self._where = describe(config)
        self._asb = config.status_mode == "full"
        self.blind = config.status_mode == "none"
        self._serial: Any = None
        self._timeout_s = config.response_timeout_ms / 1000
        self.handlers = {"print": self._cmd_print, "status": self._cmd_status}
        self._reset()

    def _reset(self) -> None:
        self.status: PrinterStatus | None = None
        self.pending = []
        self._rx = b""
        self._next_status_at = 0.0
        self.fault = None

    # ------------------------------------------------------------------ Device
    def open(self) -> None:
        self._reset()
        cfg = self.config
        self._serial = open_transport(cfg, timeout=self._timeout_s)
        try:
            setup = init() + (chinese(True) if cfg.sends_fs_and else b"")
            if self.blind:
                self._write(setup)  # a one-way printer: nothing to ask
            else:
                self._write(setup + asb_enable(self._asb))
                self.pending = self._check()
        except (DeviceTimeout, ProtocolError, DeviceUnavailable):
            self.close()
            raise
        self._log.info("printer_opened", port=self._where, status=self._describe(),
                       status_mode=cfg.status_mode)

    def close(self) -> None:
        ser, self._serial = self._serial, None
        if ser is None:
            return
        try:
            ser.close()
        except LINK_ERRORS as e:
            self._log.warning("printer_close_failed", port=self._where, error=str(e))

    def poll(self, timeout: float) -> Sequence[Observation]:
        deadline = time.monotonic() + max(0.0, timeout)
        out, self.pending = self.pending, []
        if self.blind:  # nothing to ask a one-way printer: wait for the next ticket
            if not out:
                self.idle(max(0.0, deadline - time.monotonic()))
            return out
        while not out:
            now = time.monotonic()
            if now >= self._next_status_at:
                out += self._check()
                continue
            if self._asb:
                out += self._read_unasked()
                if out:
                    break
            wake = min(self._next_status_at, deadline)
            if self._asb:
                wake = min(wake, now + ASB_IDLE_SLICE_S)
            if wake > now and self.idle(wake - now):
                break  # a command is waiting: let the supervisor execute it now
            if time.monotonic() >= deadline:
                break
        return out

    # ------------------------------------------------------------------ commands
    def _cmd_status(self, cmd: DeviceCommand) -> list[Observation]:
        if self.blind:
            return [CommandDone(cmd.command_id, True, "unknown: a one-way printer")]
        out = self._check()
        assert self.status is not None
        if not out:
            out = [self.status]
        return [*out, CommandDone(cmd.command_id, True, self._describe())]

    def _cmd_print(self, cmd: DeviceCommand) -> list[Observation]:
        doc: Any = cmd.args.get("ticket")
        if not isinstance(doc, dict):
            return [CommandDone(cmd.command_id, False, "args.ticket must be a ticket document")]
        out = [] if self.blind else self._check()
        if self.fault:
            self._log.warning("ticket_not_sent", reason=self.fault,
                              ticket_id=doc.get("ticket_id"))
            return [*out, CommandDone(cmd.command_id, False, self.fault)]
        cfg = self.config
        try:
            data = render_ticket(doc, cfg.line_columns, cfg.qr_module_size,
                                 four_byte=cfg.gb18030_four_byte,
                                 encoding=TextEncoding(cfg.encoding),
                                 chinese_mode=cfg.sends_fs_and, qr_mode=QrMode(cfg.qr),
                                 dots=cfg.dots)
        except (ValueError, TypeError) as e:  # this ticket cannot be printed; the printer can
            self._log.error("ticket_unprintable", ticket_id=doc.get("ticket_id"), error=str(e))
            return [*out, CommandDone(cmd.command_id, False, f"unprintable: {e}")]
        self._write(data)
        self._drain()
        if self.blind:
            self._log.info("ticket_sent_blind", ticket_id=doc.get("ticket_id"), bytes=len(data))
            return [CommandDone(cmd.command_id, True, "sent_unconfirmed")]
        if cfg.print_settle_ms:
            time.sleep(cfg.print_settle_ms / 1000)
        out += self._check()
        if self.fault:
            self._log.warning("ticket_failed", reason=self.fault, ticket_id=doc.get("ticket_id"))
            return [*out, CommandDone(cmd.command_id, False, self.fault)]
        self._log.info("ticket_printed", ticket_id=doc.get("ticket_id"), bytes=len(data))
        return [*out, CommandDone(cmd.command_id, True, "printed")]

    # ------------------------------------------------------------------ status
    def _describe(self) -> str:
        if self.status is None:
            return "unknown"
        return self.fault or ("paper_near_end" if self.status.paper_near_end else "ok")

    def _check(self) -> list[Observation]:
        """Ask all four status bytes; a ``PrinterStatus`` if anything changed."""
        if self._asb:
            out = self._read_unasked()
        else:
            out = []
            self._flush_input()  # a late reply to an earlier request must not count
        self._write(_STATUS_REQUEST)
        bits = StatusBits()
        replies = 0
        deadline = time.monotonic() + self._timeout_s
        while replies < len(StatusQuery):
            chunk = self._read(deadline)
            if not chunk:
                raise DeviceTimeout(f"{replies} of {len(StatusQuery)} status replies within "
                                    f"{self.config.response_timeout_ms} ms")
            self._rx += chunk
            items, used = split_replies(self._rx)
            self._rx = self._rx[used:]
            for item in items:
                if item.kind == "garbage":
                    self._discard()
                    raise ProtocolError(f"garbled status reply {item.data.hex(' ')}")
                if item.kind == "asb":
                    continue  # the status bytes asked for are newer
                if replies < len(StatusQuery):
                    bits = bits.merged(decode_status(StatusQuery(replies + 1), item.data[0]))
                replies += 1
            if replies > len(StatusQuery):
                self._discard()
                raise ProtocolError(f"{replies} status replies to {len(StatusQuery)} requests")
        self._next_status_at = time.monotonic() + self.config.status_interval_s
        return out + self._update(bits.printer_status())

    def _read_unasked(self) -> list[Observation]:
        """Automatic status back blocks that arrived since the last look."""
        ser = self._require()
        try:
            waiting = ser.in_waiting
            chunk = ser.read(waiting) if waiting else b""
        except LINK_ERRORS as e:
            raise DeviceUnavailable(f"read from {self._where} failed: {e}") from e
        if not chunk and not self._rx:
            return []
        self._rx += chunk
        items, used = split_replies(self._rx)
        self._rx = self._rx[used:]
        out: list[Observation] = []
        for item in items:
            if item.kind != "asb":
                self._discard()
                raise ProtocolError(f"unexpected bytes from the printer {item.data.hex(' ')}")
            out += self._update(decode_asb(item.data).printer_status())
        return out

    def _update(self, status: PrinterStatus) -> list[Observation]:
        if status == self.status:
            return []
        old, self.status = self.status, status
        fault = status.fault
        if fault != self.fault:
            if fault:
                self._log.warning("printer_fault", fault=fault)
            elif old is not None:
                self._log.info("printer_fault_cleared", was=self.fault)
        self.fault = fault
        return [status]

    # ------------------------------------------------------------------ the link
    def _require(self) -> Any:
        if self._serial is None:
            raise DeviceUnavailable(f"{self._where} is not open")
        return self._serial

    def _write(self, data: bytes) -> None:
        ser = self._require()
        try:
            ser.write(data)
        except serial.SerialTimeoutException as e:
            raise DeviceTimeout(f"write to {self._where} timed out: {e}") from e
        except LINK_ERRORS as e:
            raise DeviceUnavailable(f"write to {self._where} failed: {e}") from e

    def _drain(self) -> None:
        """Wait until the ticket has left the UART, so the settle time counts from there."""
        try:
            self._require().flush()
        except LINK_ERRORS as e:
            raise DeviceUnavailable(f"flush of {self._where} failed: {e}") from e

    def _read(self, deadline: float) -> bytes:
        ser = self._require()
        left = deadline - time.monotonic()
        if left <= 0:
            return b""
        try:
            waiting = ser.in_waiting
            return bytes(ser.read(max(1, waiting)))
        except LINK_ERRORS as e:
            raise DeviceUnavailable(f"read from {self._where} failed: {e}") from e

    def _discard(self) -> None:
        """After garbage, let the rest arrive and drop it so the next reply is clean."""
        time.sleep(min(0.05, self._timeout_s))
        self._flush_input()

    def _flush_input(self) -> None:
        self._rx = b""
        ser = self._require()
        try:
            ser.reset_input_buffer()
        except LINK_ERRORS as e:
            raise DeviceUnavailable(f"flush of {self._where} failed: {e}") from e


__all__ = ["EscposPrinter"]
