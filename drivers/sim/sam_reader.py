"""A GA/T 467 SAM ID card reader module served on a pty, answering byte-exactly.

The driver under test opens ``sim.port`` like a real ``/dev/ttyUSB0``. Requests are framed and
checked with ``drivers.sam_idcard.codec`` (the very codec the driver uses), replies are built
with it.
Card behaviour follows a real module: find (20 01) -> select (20 02) -> read (30 01 / 30 10);
after a successful read the card is halted and find fails (80) until the card leaves the field
(``remove()``) and comes back (``present()``). A request with a bad checksum gets SW3 10, an
unknown command 21.

Fault knobs (set from any thread): ``fault`` (``SamFault.GARBAGE`` answers noise without a
preamble instead of the reply, ``NOISE_PREFIX`` puts noise before each reply, ``BAD_CHECKSUM``
corrupts each reply's checksum, ``TRUNCATED`` stops each reply half way, ``SILENT`` answers
nothing), ``read_fault`` for the next ``read_faults`` read replies only (a reply corrupted on
the wire: the module halted the card all the same), ``stall_next_s`` (the next reply that much
late, once), ``split`` (replies written in
random chunks with short delays, as a USB adapter delivers them), ``fail_reads`` (that many
next reads fail with 41), ``read_status`` (every read answers this status, e.g. 32),
``sam_status`` (status and find answer this, e.g. 60 or 66: a broken SAM),
``refind_while_present`` (a module that keeps finding a card left on the reader, as modules
that wake halted cards do) and ``unplug()`` / ``replug()``. With ``link=PATH`` the port is a
symlink that ``replug()`` points at the new pty, like a ``/dev/serial/by-id`` name.

Standalone: ``python -m drivers.sim.sam_reader`` prints the port and takes console commands.
"""

from __future__ import annotations

import enum
import random
import termios
import threading
import time
from collections import deque
from collections.abc import Callable

import structlog

from drivers.sam_idcard.codec import (
    FIND_OK_DATA,
    FINGERPRINT_LENGTH,
    PHOTO_LENGTH,
    SELECT_OK_DATA,
    Command,
    FaultReason,
    Frame,
    SamFrameReader,
    Status,
    build_reply,
    parse_request,
    read_reply,
)
from drivers.sam_idcard.gb11643 import check_char
from drivers.sim.pty_sim import PtySim, run_console
from drivers.sim.sam_cards import (
    Foreigner2017Card,
    Foreigner2023Card,
    HmtPermitCard,
    ResidentCard,
    SimCard,
)

log = structlog.get_logger(__name__)

_SPEEDS = {getattr(termios, f"B{b}"): b for b in (9600, 19200, 38400, 57600, 115200)}
MAX_CHUNK = 200
MAX_CHUNK_DELAY_S = 0.004


class SamFault(enum.StrEnum):
    NONE = "none"
    GARBAGE = "garbage"
    NOISE_PREFIX = "noise_prefix"
    BAD_CHECKSUM = "bad_checksum"
    TRUNCATED = "truncated"  # the reply stops half way (a loose connector, a dropped USB frame)
    SILENT = "silent"


class SamReaderSim(PtySim):
    name = "sam_reader_sim"

    def __init__(self, *, link: str | None = None, seed: int = 0,
                 sam_id: bytes = bytes(range(16))) -> None:
        super().__init__(link=link)
        self.sam_id = sam_id
        self.fault = SamFault.NONE
        self.split = False
        self.fail_reads = 0
        self.read_status: Status | None = None
        self.sam_status = Status.OK
        self.refind_while_present = False
        #: the next ``read_faults`` read replies (and only they) get ``read_fault``
        self.read_fault = SamFault.BAD_CHECKSUM
        self.read_faults = 0
        #: one-shot: the next reply is this late (a module busy with something else)
        self.stall_next_s = 0.0
        #: the module's line speed: requests on the pty at another speed are heard as noise
        #: and answered with noise, as on a real line (None: any speed)
        self.baudrate: int | None = None
        #: (CMD, PARA) beyond the standard set that this module answers, and how (a vendor's
        #: "set max RF bytes", say); every request received, as (CMD, PARA, data)
        self.extra_commands: dict[tuple[int, int], Status] = {}
        self.received: list[tuple[int, int, bytes]] = []
        self.requests = 0
        #: (perf_counter when a reply's last byte was written, command), the newest 10,000:
        #: where a benchmark's card-to-gate time starts
        self.reply_log: deque[tuple[float, Command | None]] = deque(maxlen=10_000)
        self.reads = 0  # successful card reads
        self.bad_requests = 0
        self._card: SimCard | None = None
        self._halted = False
        self._selected = False
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._reader = SamFrameReader()

    # ------------------------------------------------------------------ lifecycle
    def replug(self) -> None:
        """A new pty (and, with ``link``, the same name pointing at it), module state reset."""
        self.stop()
        with self._lock:
            self._halted = self._selected = False
        self.start()

    def _on_start(self) -> None:
        self._reader = SamFrameReader()

    # ------------------------------------------------------------------ the card
    def present(self, card: SimCard) -> None:
        """A card enters the field (replacing any card there)."""
        with self._lock:
            self._card, self._halted, self._selected = card, False, False

    def remove(self) -> None:
        with self._lock:
            self._card, self._halted, self._selected = None, False, False

    def damage_reads(self, fault: SamFault, count: int = 1) -> None:
        """The next ``count`` read replies come back with ``fault`` (the rest as configured)."""
        with self._lock:
            self.read_fault, self.read_faults = fault, self.read_faults + count

    @property
    def card_present(self) -> bool:
        return self._card is not None

    # ------------------------------------------------------------------ the module
    def answer(self, request: Frame) -> bytes:
        """The module's reply to one checked request frame (before fault knobs)."""
        req = parse_request(request)
        command = req.command
        with self._lock:
            self.requests += 1
            self.received.append((req.cmd, req.para, req.data))
            if command is None:
                status = self.extra_commands.get((req.cmd, req.para), Status.BAD_COMMAND)
                return build_reply(status)
            if command in (Command.RESET, Command.STATUS):
                return build_reply(self.sam_status)
            if command is Command.SAM_ID:
                return build_reply(self.sam_status, self.sam_id
                                   if self.sam_status == Status.OK else b"")
            if self.sam_status != Status.OK:
                return build_reply(self.sam_status)
            if command is Command.FIND:
                self._selected = False
                if self._card is None or (self._halted and not self.refind_while_present):
                    return build_reply(Status.FIND_FAILED)
                return build_reply(Status.CARD_FOUND, FIND_OK_DATA)
            if command is Command.SELECT:
                if self._card is None or (self._halted and not self.refind_while_present):
                    return build_reply(Status.SELECT_FAILED)
                self._selected = True
                return build_reply(Status.OK, SELECT_OK_DATA)
            return self._read(command is Command.READ_WITH_FINGERPRINT)

    def _read(self, fingerprint: bool) -> bytes:
        card, selected, self._selected = self._card, self._selected, False
        if card is None or not selected:
            return build_reply(Status.READ_FAILED)
        if self.fail_reads > 0:
            self.fail_reads -= 1
            return build_reply(Status.READ_FAILED)
        if self.read_status is not None:
            return build_reply(self.read_status)
        photo = self._rng.randbytes(PHOTO_LENGTH)
        finger = self._rng.randbytes(FINGERPRINT_LENGTH) if fingerprint else None
        self._halted = True
        self.reads += 1
        return read_reply(card.text_block(), photo, finger)

    def _noise(self, n: int) -> bytes:
        return bytes(self._rng.choice(range(0x00, 0xAA)) for _ in range(n))

    def _with_faults(self, reply: bytes, fault: SamFault) -> bytes | None:
        if fault == SamFault.SILENT:
            return None
        if fault == SamFault.GARBAGE:
            return self._noise(len(reply))
        if fault == SamFault.NOISE_PREFIX:
            return self._noise(self._rng.randint(1, 16)) + reply
        if fault == SamFault.BAD_CHECKSUM:
            return reply[:-1] + bytes((reply[-1] ^ 0x5A,))
        if fault == SamFault.TRUNCATED:
            return reply[:max(8, len(reply) // 2)]
        return reply

    # ------------------------------------------------------------------ I/O thread
    def _line_speed(self) -> int | None:
        """The speed the driver set on its end of the pty (None when it cannot be read)."""
        slave = self._slave
        if slave is None:
            return None
        try:
            speed = termios.tcgetattr(slave)[4]
        except termios.error:
            return None
        return _SPEEDS.get(speed)

    def _on_data(self, data: bytes, read_at: float) -> bool:
        if self.baudrate is not None and self._line_speed() not in (None, self.baudrate):
            return self._write(self._noise(len(data)))  # a wrong speed: garbage both ways
        for item in self._reader.feed(data):
            fault = self.fault
            command: Command | None = None
            if isinstance(item, Frame):
                command = parse_request(item).command
                reply: bytes | None = self.answer(item)
                if self.read_faults and command in (
                        Command.READ_TEXT_PHOTO, Command.READ_WITH_FINGERPRINT):
                    self.read_faults -= 1
                    fault = self.read_fault
            else:
                self.bad_requests += 1
                reply = (build_reply(Status.CHECKSUM_ERROR)
                         if item.reason == FaultReason.BAD_CHECKSUM else None)
            if reply is not None:
                reply = self._with_faults(reply, fault)
            stall, self.stall_next_s = self.stall_next_s, 0.0
            if stall:
                time.sleep(stall)
            if reply is not None:
                if not self._send(reply):
                    return False
                self.reply_log.append((time.perf_counter(), command))
        return True

    def _send(self, reply: bytes) -> bool:
        if not self.split:
            return self._write(reply)
        pos = 0
        while pos < len(reply):
            n = self._rng.randint(1, MAX_CHUNK)
            if not self._write(reply[pos:pos + n]):
                return False
            pos += n
            time.sleep(self._rng.uniform(0, MAX_CHUNK_DELAY_S))
        return True


# --------------------------------------------------------------------------- console

#: Region prefixes of simulated numbers. Province 99 (and, for the 2023 foreigner's "9" + province
#: scheme, province 90-99) is assigned to no one, so a synthetic number with a valid check
#: character can never be a real person's. HMT permits have no such room: their numbers
#: must start 810000/820000/830000, which the decoder checks.
AREAS = ("990101", "990104", "990305", "990107", "990106", "990102")


def demo_card(kind: str, rng: random.Random) -> SimCard:
    """A synthetic card of ``kind`` (resident, hmt, f2017, f2023) with a valid check digit."""
    from datetime import date, timedelta


    today = date.today()
    birth = date(rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28))
    seq = f"{rng.randint(0, 999):03d}"
    gender = "1" if int(seq[-1]) % 2 else "2"
    start, end = today - timedelta(days=400), today + timedelta(days=3000)
    name = "测试" + rng.choice("甲乙丙丁戊己庚辛壬癸")

    def number(prefix: str) -> str:
        first17 = f"{prefix}{birth:%Y%m%d}{seq}"
        return first17 + check_char(first17)

    if kind == "hmt":
        return HmtPermitCard(name=name, id_number=number("810000"), gender_code=gender,
                             birth=birth, valid_from=start, valid_to=end)
    if kind == "f2017":
        return Foreigner2017Card(english_name="TESTPERSON DEMO", chinese_name=name,
                                 id_number=f"USA99{rng.randint(0, 10**10 - 1):010d}",
                                 gender_code=gender, birth=birth, valid_from=start,
                                 valid_to=end)
    if kind == "f2023":
        return Foreigner2023Card(name=name, english_name="TESTPERSON DEMO",
                                 id_number=number("999156"), gender_code=gender, birth=birth,
                                 valid_from=start, valid_to=end)
    return ResidentCard(name=name, id_number=number(rng.choice(AREAS)), gender_code=gender,
                        birth=birth, valid_from=start, valid_to=end)


def main() -> None:
    """Run the module on a pty for manual tests; type ``help`` for the console commands."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--link", help="also expose the port under this symlink")
    args = parser.parse_args()
    with SamReaderSim(link=args.link) as sim:
        print(f"SAM reader on {sim.port}; type help", flush=True)
        _console(sim)


def _console(sim: SamReaderSim) -> None:
    rng = random.Random()

    def knob(name: str, value: object) -> Callable[[], None]:
        return lambda: setattr(sim, name, value)

    def present(kind: str) -> Callable[[], None]:
        return lambda: sim.present(demo_card(kind, rng))

    actions: dict[str, Callable[[], None]] = {
        **{f"present {k}": present(k) for k in ("resident", "hmt", "f2017", "f2023")},
        "remove": sim.remove, "replug": sim.replug,
        **{f: knob("fault", SamFault(f)) for f in
           ("garbage", "noise_prefix", "bad_checksum", "silent")},
        "ok": knob("fault", SamFault.NONE),
        "split on": knob("split", True), "split off": knob("split", False),
        "fail read": lambda: setattr(sim, "fail_reads", sim.fail_reads + 1),
        "corrupt read": lambda: sim.damage_reads(SamFault.BAD_CHECKSUM),
        "truncate read": lambda: sim.damage_reads(SamFault.TRUNCATED),
        "stall": knob("stall_next_s", 0.15),
        "refind on": knob("refind_while_present", True),
        "refind off": knob("refind_while_present", False),
        "sam 60": knob("sam_status", Status.SAM_SELF_TEST_FAILED),
        "sam 66": knob("sam_status", Status.SAM_NOT_AUTHORIZED),
        "sam ok": knob("sam_status", Status.OK),
    }
    run_console(actions, lambda: (
        f"port {sim.port} card {'present' if sim.card_present else 'none'} fault {sim.fault} "
        f"split {sim.split} requests {sim.requests} reads {sim.reads}"))


__all__ = ["Foreigner2017Card", "Foreigner2023Card", "HmtPermitCard",
           "ResidentCard", "SamFault", "SamReaderSim", "demo_card"]

if __name__ == "__main__":
    main()
