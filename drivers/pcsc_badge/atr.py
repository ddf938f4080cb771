"""Badge type from the ATR a PC/SC contactless reader synthesises, and the UID APDU.

Contactless cards have no ATR of their own: the reader (or vpcd's virtual card) builds one as
PC/SC Part 3 describes. Storage cards (ISO 14443-3, Mifare Classic / Ultralight) carry a
registered application identifier (RID A0 00 00 03 06) followed by the standard byte SS and a
two-byte card name NN NN; ISO 14443-4 cards carry their own historical bytes. Pure functions of
bytes, no pyscard import, so the daemon core and the tests can use them without a reader.
"""

from __future__ import annotations

import enum
from functools import reduce

#: PC/SC Part 3 "Get Data": CLA FF, INS CA, P1 00 = UID, Le 00 = all of it.
GET_UID_APDU: tuple[int, ...] = (0xFF, 0xCA, 0x00, 0x00, 0x00)
SW_OK = (0x90, 0x00)

_PCSC_RID_PREFIX = bytes.fromhex("804F0CA000000306")  # category 80, tag 4F len 0C, RID
DESFIRE_ATR = bytes.fromhex("3B8180018080")


class BadgeType(enum.StrEnum):
    MIFARE_CLASSIC_1K = "mifare_classic_1k"
    MIFARE_CLASSIC_4K = "mifare_classic_4k"
    ULTRALIGHT = "ultralight"
    DESFIRE = "desfire"
    ISO14443_4 = "iso14443_4"
    UNKNOWN = "unknown"


#: PC/SC Part 3 supplement card names (NN NN) we know what to do with.
STORAGE_CARD_NAMES: dict[int, BadgeType] = {
    0x0001: BadgeType.MIFARE_CLASSIC_1K,
    0x0002: BadgeType.MIFARE_CLASSIC_4K,
    0x0003: BadgeType.ULTRALIGHT,
}


def xor_check(data: bytes) -> int:
    """TCK: the XOR of every byte from T0 to the last historical byte."""
    return reduce(lambda a, b: a ^ b, data, 0)


def _contactless_historical(atr: bytes) -> bytes | None:
    """Historical bytes of a ``3B 8n 80 01 <hist> TCK`` ATR with a correct TCK, else None.

    That shape (TD1 = 80: T=0 indicated, TD2 = 01: T=1) is what PC/SC Part 3 readers build for
    every contactless card; anything else did not come from a contactless reader.
    """
    if len(atr) < 5 or atr[0] != 0x3B or atr[1] & 0xF0 != 0x80:
        return None
    n = atr[1] & 0x0F
    if atr[2:4] != b"\x80\x01" or len(atr) != 4 + n + 1:
        return None
    if xor_check(atr[1:-1]) != atr[-1]:
        return None
    return atr[4:4 + n]


def badge_type(atr: bytes) -> BadgeType:
    """Classify a badge from its ATR; a malformed ATR or bad TCK gives ``UNKNOWN``."""
    hist = _contactless_historical(atr)
    if hist is None:
        return BadgeType.UNKNOWN
    if hist.startswith(_PCSC_RID_PREFIX):
        if len(hist) != 15:
            return BadgeType.UNKNOWN
        name = int.from_bytes(hist[9:11], "big")
        return STORAGE_CARD_NAMES.get(name, BadgeType.UNKNOWN)
    if atr == DESFIRE_ATR:
        return BadgeType.DESFIRE
    return BadgeType.ISO14443_4


def uid_from_response(data: bytes | list[int]) -> str | None:
    """UID as upper-case hex from a ``FF CA 00 00 00`` response APDU, None if refused.

    A UID is 4, 7 or 10 bytes (single, double, triple size); a 4-byte UID starting 08 is a
    random ID that changes on every presentation, which the caller may still want to see, so
    it is returned like any other.
    """
    raw = bytes(data)
    if len(raw) < 2 or tuple(raw[-2:]) != SW_OK:
        return None
    uid = raw[:-2]
    if len(uid) not in (4, 7, 10):
        return None
    return uid.hex().upper()


def status_word(data: bytes | list[int]) -> str:
    """The SW1 SW2 of a response as 4 hex digits (``6A81``), ``none`` if too short."""
    raw = bytes(data)
    return raw[-2:].hex().upper() if len(raw) >= 2 else "none"


def mask_uid(uid: str) -> str:
    """The only form of a UID that may be logged: first 4 hex digits, the rest starred."""
    return uid[:4] + "*" * max(0, len(uid) - 4)
