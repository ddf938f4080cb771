"""Resident ID card reader: a GA/T 467 SAM module on a serial line or USB (PROTOCOLS.md
section 1; the USB transport is ``drivers.sam_idcard.usb_link``).

Opening: the module must answer the status command (11 FF); with ``baudrate = "auto"`` the
driver tries each speed of ``AUTO_BAUDRATES`` until one does (the one found is logged and
kept for this driver's reopens). Then each ``init`` request body is sent and must be
answered 90, else ``ProtocolError`` (``init_refused``).

Every ``poll_interval_ms`` the driver runs find (20 01) -> select (20 02) -> read (30 01), with
``find_timeout_ms`` for the first two and ``read_timeout_ms`` for the read, and returns:
- ``[IdCardRead]`` exactly once per card presentation. A presentation ends when find reports
  no card (80). Real modules halt a card after reading it, so find fails while it still lies
  on the reader: no second read. Modules that keep finding a card left there are handled too:
  while a presentation lasts the driver does not read again.
- ``[UnreadableCard(reason)]`` (once per presentation) when the card answered but cannot be
  used: the read failed (``read_failed``, 41), or its reply came back corrupted or cut off
  (``bad_checksum``, ``truncated``, ``garbage``, ``bad_length``) in every one of up to
  ``READ_ATTEMPTS`` reads made while the card still answers (retries absorb a card pulled
  away too fast and a noisy line; a module that halted the card ends them at once); a
  card-level status (``sam_auth_card_failed`` ...), or a malformed text block (``bad_date``
  ...). The visitor is told to present the card again or see the guard, never left waiting.
- ``[]`` otherwise. Photo and fingerprint are dropped with the reply frame; the address and
  issuing authority are never decoded (``drivers.sam_idcard.text``).

Errors (become device state through the supervisor): no answer -> ``DeviceTimeout``; noise,
a bad checksum, a truncated reply to status, find or select, or a link-level status
(10/11/21) -> ``ProtocolError``; a reply that begins and then stops for 64 characters' time
is truncated at once, not after the whole timeout; a
closed or missing port -> ``DeviceUnavailable``; a SAM-level status (23/24/60/66) ->
``DeviceFault`` once, then ``fault`` stays set (DEGRADED) and the driver only asks for the SAM
status until it is healthy again. Nothing personal is ever logged: only card types, reasons,
status codes and counters.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import structlog

from drivers.base import (
    CardReader,
    DeviceFault,
    DeviceTimeout,
    DeviceUnavailable,
    IdCardRead,
    Observation,
    ProtocolError,
    UnreadableCard,
)
from drivers.sam_idcard.codec import (
    Command,
    FaultReason,
    Frame,
    Reply,
    SamCodecError,
    SamFrameReader,
    Status,
    StatusClass,
    build_request,
    frame,
    parse_reply,
    read_reply_text,
)
from drivers.sam_idcard.settings import AUTO_BAUDRATES, SamSettings
from drivers.sam_idcard.text import TextBlockError, decode_text_block
from drivers.sam_idcard.usb_link import UsbSamLink
from drivers.serial_link import LINK_ERRORS, close_serial, open_serial

log = structlog.get_logger(__name__)

SLICE_S = 0.02  # serial read timeout slice; deadlines are kept by the loop around it
READ_ATTEMPTS = 3  # reads of one presentation, while the card still answers
#: read outcomes worth another read while the card is there; after the last, the visitor is
#: told to present the card again (``UnreadableCard`` with this reason)
RETRY_READ = frozenset({Status.READ_FAILED.slug, "bad_checksum", "truncated", "garbage",
                        "bad_length"})


class SamCardReader(CardReader):
    def __init__(self, name: str, config: SamSettings, *, usb_backend: Any = None) -> None:
        """``usb_backend``: a pyusb backend object for the ``usb`` profile (tests; None is
        libusb)."""
        super().__init__(name)
        self.config = config
        self._log = log.bind(device=name)
        self._usb_backend = usb_backend
        self._where = (f"usb:{getattr(config, 'usb_id', '')}" if config.profile == "usb"
                       else str(getattr(config, "port", "")))
        baud = getattr(config, "baudrate", 115200)
        self._bauds: tuple[int, ...] = AUTO_BAUDRATES if baud == "auto" else (int(baud),)
        self._serial: Any = None
        self._frames = SamFrameReader()
        self._requests = {c: build_request(c) for c in Command}  # built once
        self._find_s = config.find_timeout_ms / 1000
        self._read_s = config.read_timeout_ms / 1000
        self._poll_s = config.poll_interval_ms / 1000
        # silence inside a reply that means it was cut off: 64 characters' time, 50 ms at least
        self._gap_s = max(0.05, 640 / min(self._bauds))
        self._presented = False
        self._next_at = 0.0
        #: counters for status and tests: reads, unreadable, resyncs
        self.stats = {"reads": 0, "unreadable": 0, "resyncs": 0}

    # ------------------------------------------------------------------ Device
    def open(self) -> None:
        self.fault = None
        self._presented = False
        try:
            reply = self._connect()
            self._check_sam(reply)
        except DeviceFault:
            pass  # reachable but the SAM is unhealthy: stay open, DEGRADED (``fault``)
        except (DeviceTimeout, DeviceUnavailable, ProtocolError):
            self.close()
            raise
        try:
            self._send_init()
        except (DeviceTimeout, DeviceUnavailable, ProtocolError):
            self.close()
            raise
        self._next_at = time.monotonic()
        self._log.info("sam_reader_opened", port=self._where, fault=self.fault,
                       baudrate=self._bauds[0] if self.config.profile == "serial" else None)

    def _connect(self) -> Reply:
        """Open the transport and get the status reply; each baud rate in turn for "auto"."""
        if self.config.profile == "usb":
            cfg: Any = self.config
            self._serial = UsbSamLink(cfg.usb_id, serial=cfg.usb_serial,
                                      interface=cfg.interface, timeout=SLICE_S,
                                      backend=self._usb_backend)
            return self._transact(Command.STATUS, max(self._find_s, 0.2))
        last: DeviceTimeout | None = None
        for baud in self._bauds:
            self._serial = open_serial(getattr(self.config, "port", ""), baudrate=baud,
                                       timeout=SLICE_S)
            try:
                reply = self._transact(Command.STATUS, max(self._find_s, 0.2))
            except (DeviceTimeout, SamCodecError) as e:
                if len(self._bauds) == 1:
                    raise
                last = e if isinstance(e, DeviceTimeout) else DeviceTimeout(str(e))
                self.close()
                continue
            if len(self._bauds) > 1:
                self._log.info("sam_baudrate_found", baudrate=baud)
                self._bauds = (baud, *[b for b in self._bauds if b != baud])
            return reply
        raise DeviceTimeout(f"no status reply at {', '.join(map(str, self._bauds))} baud"
                            ) from last

    def _send_init(self) -> None:
        for body in self.config.init:
            reply = self._transact_frame(frame(bytes.fromhex(body)), f"init {body}",
                                         max(self._find_s, 0.2))
            if reply.status is not Status.OK:
                raise ProtocolError(f"init command {body} answered {reply.sw3:02x}",
                                    reason="init_refused")
            self._log.info("sam_init_sent", command=body[:4])

    def close(self) -> None:
        ser, self._serial = self._serial, None
        if isinstance(ser, UsbSamLink):
            ser.close()
        else:
            close_serial(ser, self._where, self.name)

    def poll(self, timeout: float) -> Sequence[Observation]:
        wait = self._next_at - time.monotonic()
        if wait > timeout:
            self.idle(timeout)
            return []
        if wait > 0:
            self.idle(wait)
        self._next_at = time.monotonic() + self._poll_s
        if self.fault is not None:
            self._check_sam(self._transact(Command.STATUS, self._find_s), raise_fault=False)
            return []
        return self._cycle()

    # ------------------------------------------------------------------ card logic
    def _cycle(self) -> list[Observation]:
        found = self._card_step(Command.FIND, self._find_s)
        if self._presented:  # a card was reported: wait until it leaves the field
            if not found:
                self._presented = False
                self._log.debug("card_left")
            return []
        if not (found and self._card_step(Command.SELECT, self._find_s)):
            return []
        return self._report(self._read_presented())

    def _read_presented(self) -> IdCardRead | UnreadableCard:
        """Read the card on the reader, trying again (up to ``READ_ATTEMPTS``) after a failure
        worth another try (41, or a reply that came back corrupted or cut off) while the card
        still answers find and select. A module that halted the card after a read whose reply
        was lost no longer finds it: then the visitor is told at once to present it again."""
        result = self._read()
        for _ in range(READ_ATTEMPTS - 1):
            if not (isinstance(result, UnreadableCard) and result.reason in RETRY_READ):
                break
            if not (self._card_step(Command.FIND, self._find_s)
                    and self._card_step(Command.SELECT, self._find_s)):
                break
            self._log.info("card_read_retry", reason=result.reason)
            result = self._read()
        return result

    def _report(self, result: IdCardRead | UnreadableCard) -> list[Observation]:
        self._presented = True
        if isinstance(result, IdCardRead):
            self.stats["reads"] += 1
            self._log.info("card_read", card_type=result.card_type)
        else:
            self.stats["unreadable"] += 1
            self._log.info("card_unreadable", reason=result.reason)
        return [result]

    def _card_step(self, command: Command, timeout: float) -> bool:
        """Find or select: True if the card answered, False if there is none (80/81)."""
        reply = self._checked(self._transact(command, timeout))
        status = reply.status
        if status in (Status.CARD_FOUND, Status.OK):
            return True
        if status is not None and status.status_class == StatusClass.NO_CARD:
            return False
        raise ProtocolError(f"unexpected status {reply.sw3:#04x} to {command.name}",
                            reason="unexpected_status")

    def _read(self) -> IdCardRead | UnreadableCard:
        """One read; whatever is wrong with the card or its data is an ``UnreadableCard``.

        The module halts the card after a read, so a reply we cannot use must still be
        reported: the visitor is told to see the guard instead of waiting at the reader.
        Check digits and dates are the core's business (``gated.policy.identity``).
        """
        try:
            reply = self._checked(self._transact(Command.READ_TEXT_PHOTO, self._read_s))
        except SamCodecError as e:  # corrupted or cut off on the wire: the card was there
            if e.reason not in RETRY_READ:
                raise
            self._log.warning("card_reply_damaged", reason=e.reason)
            return UnreadableCard(e.reason)
        status = reply.status
        assert status is not None  # _checked raised for unknown codes
        if status is not Status.OK:
            return UnreadableCard(status.slug)  # card errors, no card, 91 field empty
        try:
            return decode_text_block(read_reply_text(reply))  # the photo is never copied
        except (TextBlockError, SamCodecError) as e:
            return UnreadableCard(e.reason)

    # ------------------------------------------------------------------ status
    def _checked(self, reply: Reply) -> Reply:
        status = reply.status
        if status is None:
            raise ProtocolError(f"unknown status {reply.sw3:#04x}", reason="unknown_status")
        if status.status_class == StatusClass.LINK_ERROR:
            raise ProtocolError(f"module refused our frame: {status.meaning}",
                                reason=status.slug)
        if status.status_class == StatusClass.SAM_FAULT:
            self._check_sam(reply)
        return reply

    def _check_sam(self, reply: Reply, *, raise_fault: bool = True) -> None:
        """Set or clear ``fault`` from a status reply; raise ``DeviceFault`` when it is set."""
        status = reply.status
        if status == Status.OK:
            if self.fault is not None:
                self._log.info("sam_recovered", was=self.fault)
            self.fault = None
            return
        if status is not None and status.status_class == StatusClass.SAM_FAULT:
            if self.fault != status.slug:
                self._log.warning("sam_fault", status=f"{reply.sw3:02x}", meaning=status.meaning)
            self.fault = status.slug
            if raise_fault:
                raise DeviceFault(f"SAM module: {status.meaning}", reason=status.slug)
            return
        raise ProtocolError(f"unexpected SAM status {reply.sw3:#04x}", reason="unexpected_status")

    # ------------------------------------------------------------------ transport
    def _transact(self, command: Command, timeout: float) -> Reply:
        """Send one request and frame its reply by the length field."""
        return self._transact_frame(self._requests[command], command.name, timeout)

    def _transact_frame(self, request: bytes, what: str, timeout: float) -> Reply:
        ser = self._serial
        if ser is None:
            raise DeviceUnavailable(f"{self._where} is not open")
        reader = self._frames
        faults: list[FaultReason] = []
        try:
            ser.reset_input_buffer()
            reader.reset()
            ser.write(request)
            deadline = time.monotonic() + timeout
            last_byte = 0.0
            while time.monotonic() < deadline:
                data = ser.read(max(1, ser.in_waiting))
                if data:
                    last_byte = time.monotonic()
                elif reader.pending and time.monotonic() - last_byte > self._gap_s:
                    break  # a reply begun and then silence: cut off, no use waiting on
                for item in reader.feed(data) if data else ():
                    if isinstance(item, Frame):
                        if faults:
                            self.stats["resyncs"] += 1
                            self._log.warning("sam_resync", dropped=[str(f) for f in faults])
                        return parse_reply(item)
                    faults.append(item.reason)
                    if item.reason == FaultReason.BAD_CHECKSUM:
                        raise SamCodecError(f"reply to {what} has a bad checksum",
                                            reason="bad_checksum")
        except LINK_ERRORS as e:
            raise DeviceUnavailable(f"{self._where}: {e}") from e
        if faults:
            raise SamCodecError(f"no valid reply to {what}, only {faults[0]}",
                                reason=str(faults[0]))
        if reader.pending:
            raise SamCodecError(f"reply to {what} cut off after {reader.pending} bytes",
                                reason="truncated")
        raise DeviceTimeout(f"no reply to {what} within {timeout * 1000:.0f} ms")


__all__ = ["SamCardReader"]
