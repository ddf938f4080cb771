"""GA/T 467 "SAM_V" serial codec for resident ID card readers: pure functions of bytes.

Frames (PROTOCOLS.md section 1)::

    host -> SAM : AA AA AA 96 69 | LEN_H LEN_L | CMD PARA [DATA]    | CHK
    SAM -> host : AA AA AA 96 69 | LEN_H LEN_L | SW1 SW2 SW3 [DATA] | CHK

LEN counts every byte after the length field, CHK included; CHK is the XOR of LEN_H up to the
byte before CHK. Both sides live here: the host side for ``drivers.sam_idcard.driver`` and the
module side for ``drivers.sim.sam_reader``, so the simulator parses requests with the very code
whose output it answers.

What a caller must know:
- Replies arrive split over several reads (a 1295-byte read reply takes ~110 ms at 115200 baud),
  so ``SamFrameReader`` frames by the length field, never by read size, and resynchronises on
  the preamble after noise. It never raises: bad frames come out as ``FrameFault`` items and
  are counted per reason in ``SamFrameReader.counts``.
- Every error raised here is a ``SamCodecError`` (a ``ProtocolError``) with a ``reason`` slug;
  ``TextBlockError`` (its subclass, in ``drivers.sam_idcard.text``) means the card answered but its
  text block is unusable, which the driver reports as an unreadable card, not a link problem.
- The text block (personal data) is decoded by ``decode_text_block``, re-exported from
  ``drivers.sam_idcard.text``: address, issuing authority and photo are never decoded at all.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field

# The text block decoder lives in its own module (layouts are long); it also holds the error
# base and the block size, so it does not import this module. Callers may import from here.
from drivers.sam_idcard.text import TEXT_LENGTH, SamCodecError, TextBlockError, decode_text_block

PREAMBLE = bytes.fromhex("AAAAAA9669")
HEADER = len(PREAMBLE) + 2  # preamble + LEN
MIN_LEN = 3  # CMD PARA CHK (the shortest request); a reply has at least SW1 SW2 SW3 CHK
MAX_LEN = 0x090A  # the 30 10 reply (text + photo + fingerprint), the longest frame there is
PHOTO_LENGTH = 1024
FINGERPRINT_LENGTH = 1024


class Command(enum.Enum):
    """Request (CMD, PARA) pairs of the module."""

    RESET = (0x10, 0xFF)
    STATUS = (0x11, 0xFF)
    SAM_ID = (0x12, 0xFF)
    FIND = (0x20, 0x01)
    SELECT = (0x20, 0x02)
    READ_TEXT_PHOTO = (0x30, 0x01)
    READ_WITH_FINGERPRINT = (0x30, 0x10)

    @classmethod
    def lookup(cls, cmd: int, para: int) -> Command | None:
        return _COMMANDS.get((cmd, para))


_COMMANDS = {c.value: c for c in Command}


class StatusClass(enum.StrEnum):
    """What a status means for the host, independent of which command it answered."""

    SUCCESS = "success"
    NO_CARD = "no_card"  # nothing (or nothing selectable) in the field: not an error
    CARD_ERROR = "card_error"  # this card could not be read: an unreadable card, not a fault
    LINK_ERROR = "link_error"  # the module did not understand our frame: a protocol error
    SAM_FAULT = "sam_fault"  # the security module itself is broken or not authorised


class Status(enum.IntEnum):
    """SW3 of every reply. ``meaning`` is for operators; ``slug`` for reasons and logs."""

    OK = 0x90
    CARD_FOUND = 0x9F
    FIELD_EMPTY = 0x91
    CHECKSUM_ERROR = 0x10
    LENGTH_ERROR = 0x11
    BAD_COMMAND = 0x21
    UNAUTHORIZED = 0x23
    UNRECOGNIZED_ERROR = 0x24
    CARD_AUTH_SAM_FAILED = 0x31
    SAM_AUTH_CARD_FAILED = 0x32
    INFO_CHECK_FAILED = 0x33
    UNKNOWN_CARD_TYPE = 0x40
    READ_FAILED = 0x41
    RANDOM_FAILED = 0x47
    SAM_SELF_TEST_FAILED = 0x60
    SAM_NOT_AUTHORIZED = 0x66
    FIND_FAILED = 0x80
    SELECT_FAILED = 0x81

    @property
    def meaning(self) -> str:
        return _MEANING[self][0]

    @property
    def status_class(self) -> StatusClass:
        return _MEANING[self][1]

    @property
    def slug(self) -> str:
        return self.name.lower()


_S, _N, _C, _L, _F = (StatusClass.SUCCESS, StatusClass.NO_CARD, StatusClass.CARD_ERROR,
                      StatusClass.LINK_ERROR, StatusClass.SAM_FAULT)
_MEANING: dict[Status, tuple[str, StatusClass]] = {
    Status.OK: ("operation succeeded", _S),
    Status.CARD_FOUND: ("card found", _S),
    Status.FIELD_EMPTY: ("field empty (nothing stored for this item)", _S),
    Status.CHECKSUM_ERROR: ("module received a frame with a bad checksum", _L),
    Status.LENGTH_ERROR: ("module received a frame with a bad length", _L),
    Status.BAD_COMMAND: ("module does not know the command", _L),
    Status.UNAUTHORIZED: ("operation not authorised", _F),
    Status.UNRECOGNIZED_ERROR: ("unrecognised error inside the module", _F),
    Status.CARD_AUTH_SAM_FAILED: ("card failed to authenticate the SAM", _C),
    Status.SAM_AUTH_CARD_FAILED: ("SAM failed to authenticate the card (not genuine?)", _C),
    Status.INFO_CHECK_FAILED: ("information check failed", _C),
    Status.UNKNOWN_CARD_TYPE: ("unknown card type", _C),
    Status.READ_FAILED: ("read failed (card moved away?)", _C),
    Status.RANDOM_FAILED: ("getting a random number from the card failed", _C),
    Status.SAM_SELF_TEST_FAILED: ("SAM self-test failed", _F),
    Status.SAM_NOT_AUTHORIZED: ("SAM not authorised", _F),
    Status.FIND_FAILED: ("no card found", _N),
    Status.SELECT_FAILED: ("card select failed", _N),
}


# --------------------------------------------------------------------------- frames


def checksum(data: bytes | bytearray) -> int:
    """XOR of ``data``: pass LEN_H .. the byte before CHK."""
    x = 0
    for b in data:
        x ^= b
    return x


def frame(body: bytes) -> bytes:
    """Wrap ``body`` (CMD PARA DATA or SW1 SW2 SW3 DATA) with preamble, LEN and CHK."""
    length = len(body) + 1
    if not MIN_LEN <= length <= MAX_LEN:
        raise ValueError(f"frame body of {len(body)} bytes out of range")
    head = length.to_bytes(2, "big") + body
    return PREAMBLE + head + bytes((checksum(head),))


def build_request(command: Command, data: bytes = b"") -> bytes:
    return frame(bytes(command.value) + data)


def build_reply(status: Status | int, data: bytes = b"", sw1: int = 0, sw2: int = 0) -> bytes:
    return frame(bytes((sw1, sw2, int(status))) + data)


@dataclass(frozen=True)
class Frame:
    """One checked frame: ``body`` is everything between LEN and CHK."""

    body: bytes = field(repr=False)

    def __repr__(self) -> str:  # a read reply holds personal data: show its size only
        return f"Frame({len(self.body)} bytes)"


class FaultReason(enum.StrEnum):
    BAD_CHECKSUM = "bad_checksum"
    BAD_LENGTH = "bad_length"
    GARBAGE = "garbage"


@dataclass(frozen=True)
class FrameFault:
    """Bytes the reader dropped and why; ``size`` is how many bytes went."""

    reason: FaultReason
    size: int


class SamFrameReader:
    """Incremental framer for either direction. ``feed`` never raises.

    Counting: each frame with a bad checksum or an impossible length is one fault; each run of
    bytes between frames that does not start with a preamble is one ``garbage`` fault. Bytes
    skipped after a bad frame, up to the next preamble, belong to that fault and are not
    counted again (where a bad frame ends is unknowable when its length is the bad byte).
    ``bytes_in == bytes_framed + bytes_dropped + pending`` holds after every call.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._attributed = False  # bytes skipped now belong to a fault already counted
        self.counts: Counter[FaultReason] = Counter()
        self.frames = 0
        self.bytes_in = 0
        self.bytes_framed = 0
        self.bytes_dropped = 0

    @property
    def pending(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        """Drop buffered bytes (before a new request: a late reply must not answer it)."""
        self.bytes_dropped += len(self._buf)
        self._buf.clear()
        self._attributed = False

    def feed(self, data: bytes) -> list[Frame | FrameFault]:
        self.bytes_in += len(data)
        self._buf += data
        out: list[Frame | FrameFault] = []
        buf = self._buf
        while buf:
            start = buf.find(PREAMBLE)
            if start != 0:
                skip = start if start > 0 else _partial_preamble_at(buf)
                if skip == 0:
                    break  # the buffer may be the start of a preamble split across reads
                self._drop(skip, out)
                continue
            if len(buf) < HEADER:
                break
            length = int.from_bytes(buf[5:7], "big")
            if not MIN_LEN <= length <= MAX_LEN:
                self._fault(FaultReason.BAD_LENGTH, 1, out)
                continue
            total = HEADER + length
            if len(buf) < total:
                break
            if checksum(buf[5:total - 1]) != buf[total - 1]:
                # drop the preamble only: if the length field was the corrupt byte, the next
                # frame starts inside what it claimed, and the rescan finds it
                self._fault(FaultReason.BAD_CHECKSUM, 1, out)
                continue
            out.append(Frame(bytes(buf[HEADER:total - 1])))
            del buf[:total]
            self.frames += 1
            self.bytes_framed += total
            self._attributed = False
        return out

    def _drop(self, n: int, out: list[Frame | FrameFault]) -> None:
        if not self._attributed:
            self.counts[FaultReason.GARBAGE] += 1
            out.append(FrameFault(FaultReason.GARBAGE, n))
            self._attributed = True
        elif out and isinstance(out[-1], FrameFault):
            last = out[-1]
            out[-1] = FrameFault(last.reason, last.size + n)
        del self._buf[:n]
        self.bytes_dropped += n

    def _fault(self, reason: FaultReason, n: int, out: list[Frame | FrameFault]) -> None:
        self.counts[reason] += 1
        out.append(FrameFault(reason, n))
        del self._buf[:n]
        self.bytes_dropped += n
        self._attributed = True  # the bytes up to the next preamble are part of this fault


def _partial_preamble_at(buf: bytearray) -> int:
    """Where the tail of ``buf`` that could start a preamble begins (``len(buf)``: none)."""
    for i in range(max(0, len(buf) - len(PREAMBLE) + 1), len(buf)):
        if PREAMBLE.startswith(buf[i:]):
            return i
    return len(buf)


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Reply:
    sw1: int
    sw2: int
    sw3: int
    data: bytes = field(repr=False)

    @property
    def status(self) -> Status | None:
        try:
            return Status(self.sw3)
        except ValueError:
            return None


@dataclass(frozen=True)
class Request:
    cmd: int
    para: int
    data: bytes = b""

    @property
    def command(self) -> Command | None:
        return Command.lookup(self.cmd, self.para)


def parse_reply(f: Frame) -> Reply:
    if len(f.body) < 3:
        raise SamCodecError(f"reply of {len(f.body)} body bytes is too short",
                            reason="bad_length")
    return Reply(f.body[0], f.body[1], f.body[2], f.body[3:])


def parse_request(f: Frame) -> Request:
    return Request(f.body[0], f.body[1], f.body[2:])


def read_reply_text(reply: Reply, *, with_fingerprint: bool = False) -> bytes:
    """The 256-byte text block of a 30 01 / 30 10 reply; photo and fingerprint are dropped.

    The length fields must add up to the data actually received, else ``bad_length``.
    """
    n = 3 if with_fingerprint else 2
    data = reply.data
    if len(data) < 2 * n:
        raise SamCodecError("read reply without length fields", reason="bad_length")
    lengths = [int.from_bytes(data[2 * i:2 * i + 2], "big") for i in range(n)]
    if lengths[0] != TEXT_LENGTH or 2 * n + sum(lengths) != len(data):
        raise SamCodecError(f"read reply lengths {lengths} do not match {len(data)} data bytes",
                            reason="bad_length")
    return data[2 * n:2 * n + TEXT_LENGTH]


def read_reply(text: bytes, photo: bytes = bytes(PHOTO_LENGTH),
               fingerprint: bytes | None = None) -> bytes:
    """A whole successful 30 01 (or, with ``fingerprint``, 30 10) reply frame."""
    parts = [text, photo] if fingerprint is None else [text, photo, fingerprint]
    lengths = b"".join(len(p).to_bytes(2, "big") for p in parts)
    return build_reply(Status.OK, lengths + b"".join(parts))


FIND_OK_DATA = bytes(4)
SELECT_OK_DATA = bytes(8)

__all__ = [
    "FINGERPRINT_LENGTH", "FIND_OK_DATA", "MAX_LEN", "MIN_LEN", "PHOTO_LENGTH", "PREAMBLE",
    "SELECT_OK_DATA", "TEXT_LENGTH", "Command", "FaultReason", "Frame", "FrameFault", "Reply",
    "Request", "SamCodecError", "SamFrameReader", "Status", "StatusClass", "TextBlockError",
    "build_reply", "build_request", "checksum", "decode_text_block", "frame", "parse_reply",
    "parse_request", "read_reply", "read_reply_text",
]
