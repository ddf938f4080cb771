"""Daemon overhead of an ID card read, next to a pty round trip of the same reply.

Figure: from the last byte of a 1295-byte 30 01 read reply to the credential decision, i.e.
framing the final chunk (the reader has the first 1263 bytes already, as it would have from the
earlier reads of a split reply; the checksum covers the whole frame at this point), parsing the
reply, decoding the text block, the check-character test, ``credential_from_card`` (HMAC
pseudonym, masking, dates) and a decision callable (trivial here; the lead swaps in the policy).
Target: p99 under 5 ms. Also shown: the same when the whole reply arrives in one read.

Baselines, measured in the same run: a 1295-byte frame echoed through a pty pair (master ->
slave -> master, raw mode), and, for context, a whole driver poll that reads a card from the
simulator (find, select and read, three round trips through a pty).

    python bench/bench_idcard.py [--n 2000]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import select
import time
import tty
from collections.abc import Callable
from datetime import date

import structlog
from common import latency_figures

from drivers.base import IdCardRead, UnreadableCard
from drivers.sam_idcard.codec import Frame, SamFrameReader, parse_reply, read_reply, read_reply_text
from drivers.sam_idcard.driver import SamCardReader
from drivers.sam_idcard.settings import SamReaderConfig
from drivers.sam_idcard.text import decode_text_block
from drivers.sim.sam_cards import (
    Foreigner2017Card,
    Foreigner2023Card,
    HmtPermitCard,
    ResidentCard,
    SimCard,
)
from drivers.sim.sam_reader import SamReaderSim
from gated.policy.credentials import Credential
from gated.policy.identity import credential_from_card, validate_id_number

TARGET_MS = 5.0
BENCH = "idcard"
LAST_CHUNK = 32
KEY = os.urandom(32)
TODAY = date.today()

CARDS: list[SimCard] = [
    ResidentCard(name="测试甲", id_number="99010519800101001X", gender_code="1",
                 birth=date(1980, 1, 1), valid_from=date(2015, 3, 1), valid_to=None),
    HmtPermitCard(name="测试丙", id_number="810000199001010019", gender_code="1",
                  birth=date(1990, 1, 1), valid_from=date(2019, 5, 1),
                  valid_to=date(2029, 5, 1)),
    Foreigner2017Card(english_name="TESTPERSON ALPHA", id_number="USA990078061501",
                      gender_code="1", birth=date(1978, 6, 15), valid_from=date(2017, 7, 1),
                      valid_to=date(2027, 7, 1)),
    Foreigner2023Card(name="测试戊", id_number="991156197806150016", gender_code="1",
                      birth=date(1978, 6, 15), valid_from=date(2023, 12, 1),
                      valid_to=date(2033, 12, 1)),
]


def decide(result: Credential | UnreadableCard) -> bool:
    """Stand-in for the policy: open for a valid credential."""
    return isinstance(result, Credential) and result.validity == "valid"


def process(reader: SamFrameReader, chunk: bytes, decision: Callable[..., bool]) -> bool:
    """What the daemon does once ``chunk`` (holding the reply's last byte) has arrived."""
    for item in reader.feed(chunk):
        if isinstance(item, Frame):
            card = decode_text_block(read_reply_text(parse_reply(item)))
            if card.card_type in ("resident", "hmt_permit") and not validate_id_number(
                    card.id_number):
                return decision(UnreadableCard("bad_check_digit"))
            assert isinstance(card, IdCardRead)
            return decision(credential_from_card(card, KEY, TODAY))
    raise RuntimeError("reply not framed")


def overhead(n: int, split: bool) -> list[float]:
    rng = random.Random(1)
    replies = [read_reply(c.text_block(), rng.randbytes(1024)) for c in CARDS]
    out = []
    for i in range(n):
        raw = replies[i % len(replies)]
        reader = SamFrameReader()
        head, tail = (raw[:-LAST_CHUNK], raw[-LAST_CHUNK:]) if split else (b"", raw)
        if head:
            reader.feed(head)
        t0 = time.perf_counter()
        process(reader, tail, decide)
        out.append(time.perf_counter() - t0)
    return out


def pty_echo(n: int) -> list[float]:
    frame = read_reply(CARDS[0].text_block())
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    out = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(master, frame)
            got = b""
            while len(got) < len(frame):
                select.select([slave], [], [], 1.0)
                got += os.read(slave, 4096)
            os.write(slave, got)
            back = b""
            while len(back) < len(frame):
                select.select([master], [], [], 1.0)
                back += os.read(master, 4096)
            out.append(time.perf_counter() - t0)
    finally:
        os.close(master)
        os.close(slave)
    return out


def driver_reads(n: int) -> list[float]:
    out = []
    with SamReaderSim() as sim:
        cfg = SamReaderConfig(type="sam_idcard", port=sim.port, poll_interval_ms=20)
        reader = SamCardReader("bench", cfg)
        reader.open()
        try:
            for i in range(n):
                sim.present(CARDS[i % len(CARDS)])
                time.sleep(0.021)  # let the poll interval pass
                t0 = time.perf_counter()
                got = reader.poll(0.05)
                out.append(time.perf_counter() - t0)
                if len(got) != 1:
                    raise RuntimeError(f"expected one read, got {got}")
                sim.remove()
                reader.poll(0.05)
        finally:
            reader.close()
    return out



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    overhead(200, True)  # warm-up
    split = overhead(args.n, True)
    whole = overhead(args.n, False)
    echo = pty_echo(args.n)
    polls = driver_reads(max(20, args.n // 20))
    print(f"ID card read -> credential decision, {args.n} replies of 1295 bytes "
          f"(4 card types):")
    latency_figures(BENCH, "daemon overhead, last 32-byte chunk", split, baseline_s=echo,
                    baseline_name="pty echo of the reply", target_p99=f"< {TARGET_MS} ms")
    latency_figures(BENCH, "daemon overhead, whole reply in one read", whole, baseline_s=echo,
                    baseline_name="pty echo of the reply")
    latency_figures(BENCH, "context: driver poll find+select+read (sim)", polls)


if __name__ == "__main__":
    main()
