"""The 256-byte text block of a resident card or permit, as the SAM module returns it.

UCS-2 little-endian, fields space-padded, card type flag at offset 248 (PROTOCOLS.md section 1).
``decode_text_block`` keeps only what ``drivers.base.IdCardRead`` carries (type, number, name,
gender, birth, validity, nation) and never decodes the address, the issuing authority or any
reserved field: those bytes are not even turned into strings. ``encode_text_block`` is the
inverse, used by the simulator and the tests to build valid blocks from fields.

Malformed blocks raise ``TextBlockError`` with a ``reason``: ``bad_length``, ``unknown_card_type``,
``bad_encoding``, ``bad_date``, ``bad_id_number``, ``bad_gender``, ``bad_nation``,
``missing_name``. Check digits are not verified here (``gated.policy.identity`` does).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date

from drivers.base import IdCardRead, ProtocolError

LONG_TERM = "长期"
FLAG_OFFSET = 248
TEXT_LENGTH = 256


class SamCodecError(ProtocolError):
    """Bytes that are not what the SAM protocol allows here (base of every codec error,
    re-exported by ``drivers.sam_idcard.codec``). ``reason`` is a short slug."""

    reason = "sam_codec_error"


class TextBlockError(SamCodecError):
    """The card answered, but its text block is not a valid card: an unreadable card."""

    reason = "bad_text_block"


class SamCardType(enum.StrEnum):
    """Values are ``IdCardRead.card_type`` (and ``gated.credentials.CardType``) strings."""

    RESIDENT = "resident"
    HMT_PERMIT = "hmt_permit"
    FOREIGNER_2017 = "foreigner_2017"
    FOREIGNER_2023 = "foreigner_2023"

    @property
    def flag(self) -> str:
        return {"resident": " ", "hmt_permit": "J", "foreigner_2017": "I",
                "foreigner_2023": "Y"}[self.value]


_BY_FLAG = {t.flag: t for t in SamCardType}


class F(enum.StrEnum):
    """Field names of the layouts below."""

    NAME = "name"
    ENGLISH_NAME = "english_name"
    ENGLISH_NAME_2 = "english_name_2"
    GENDER = "gender"
    NATION = "nation"
    BIRTH = "birth"
    ADDRESS = "address"
    NUMBER = "number"
    AUTHORITY = "authority"
    VALID_FROM = "valid_from"
    VALID_TO = "valid_to"
    PASS_NUMBER = "pass_number"
    ISSUE_COUNT = "issue_count"
    NATIONALITY = "nationality"
    VERSION = "version"
    AUTHORITY_CODE = "authority_code"
    RENEWAL_COUNT = "renewal_count"


@dataclass(frozen=True)
class Slot:
    offset: int
    length: int


_COMMON = {F.VALID_FROM: Slot(188, 16), F.VALID_TO: Slot(204, 16)}
LAYOUTS: dict[SamCardType, dict[F, Slot]] = {
    SamCardType.RESIDENT: {
        F.NAME: Slot(0, 30), F.GENDER: Slot(30, 2), F.NATION: Slot(32, 4),
        F.BIRTH: Slot(36, 16), F.ADDRESS: Slot(52, 70), F.NUMBER: Slot(122, 36),
        F.AUTHORITY: Slot(158, 30), **_COMMON},
    SamCardType.HMT_PERMIT: {
        F.NAME: Slot(0, 30), F.GENDER: Slot(30, 2), F.BIRTH: Slot(36, 16),
        F.ADDRESS: Slot(52, 70), F.NUMBER: Slot(122, 36), F.AUTHORITY: Slot(158, 30),
        **_COMMON, F.PASS_NUMBER: Slot(220, 18), F.ISSUE_COUNT: Slot(238, 4)},
    SamCardType.FOREIGNER_2017: {
        F.ENGLISH_NAME: Slot(0, 120), F.GENDER: Slot(120, 2), F.NUMBER: Slot(122, 30),
        F.NATIONALITY: Slot(152, 6), F.NAME: Slot(158, 30), **_COMMON,
        F.BIRTH: Slot(220, 16), F.VERSION: Slot(236, 4), F.AUTHORITY_CODE: Slot(240, 8)},
    SamCardType.FOREIGNER_2023: {
        F.NAME: Slot(0, 30), F.GENDER: Slot(30, 2), F.RENEWAL_COUNT: Slot(32, 4),
        F.BIRTH: Slot(36, 16), F.ENGLISH_NAME: Slot(52, 70), F.NUMBER: Slot(122, 36),
        **_COMMON, F.ENGLISH_NAME_2: Slot(220, 22), F.NATIONALITY: Slot(242, 6)},
}

_NUMBER = {
    SamCardType.RESIDENT: re.compile(r"[0-9]{17}[0-9X]"),
    SamCardType.HMT_PERMIT: re.compile(r"8[123]0000[0-9]{11}[0-9X]"),
    SamCardType.FOREIGNER_2017: re.compile(r"[A-Z]{3}[0-9]{12}"),
    SamCardType.FOREIGNER_2023: re.compile(r"9[0-9]{16}[0-9X]"),
}
_GENDERS = frozenset("0129")
_PAD = " \x00"


def _text(block: bytes, slot: Slot) -> str:
    raw = block[slot.offset:slot.offset + slot.length]
    try:
        text = raw.decode("utf-16-le").rstrip(_PAD)
    except UnicodeDecodeError:
        raise TextBlockError("field is not valid UCS-2", reason="bad_encoding") from None
    if any(ch < " " or "\ud800" <= ch <= "\udfff" for ch in text):
        raise TextBlockError("control character in a field", reason="bad_encoding")
    return text


def parse_yyyymmdd(text: str) -> date:
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        raise TextBlockError("date is not YYYYMMDD", reason="bad_date")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise TextBlockError("impossible date", reason="bad_date") from None


def card_type_of(block: bytes) -> SamCardType:
    flag = block[FLAG_OFFSET:FLAG_OFFSET + 2]
    if flag in (b"\x00\x00", b"  "):  # early resident cards leave the reserved area blank
        return SamCardType.RESIDENT
    t = _BY_FLAG.get(flag.decode("utf-16-le", "replace"))
    if t is None or flag[1] != 0:
        raise TextBlockError("unknown card type flag", reason="unknown_card_type")
    return t


def decode_text_block(block: bytes) -> IdCardRead:
    """Decode what the daemon needs; raises ``TextBlockError``. Never decodes the address."""
    if len(block) != TEXT_LENGTH:
        raise TextBlockError(f"text block of {len(block)} bytes", reason="bad_length")
    card = card_type_of(block)
    layout = LAYOUTS[card]
    name = _text(block, layout[F.NAME])
    if not name and F.ENGLISH_NAME in layout:  # foreigners: Chinese name optional
        name = _text(block, layout[F.ENGLISH_NAME])
        if F.ENGLISH_NAME_2 in layout:
            name += _text(block, layout[F.ENGLISH_NAME_2])
        name = name.strip()
    if not name:
        raise TextBlockError("name is empty", reason="missing_name")
    number = _text(block, layout[F.NUMBER])
    if not _NUMBER[card].fullmatch(number):
        raise TextBlockError("card number has the wrong form", reason="bad_id_number")
    gender = _text(block, layout[F.GENDER])
    if gender not in _GENDERS:
        raise TextBlockError("gender code is not 0/1/2/9", reason="bad_gender")
    nation = ""
    if F.NATION in layout:
        nation = _text(block, layout[F.NATION])
        if len(nation) != 2 or not nation.isascii() or not nation.isdigit():
            raise TextBlockError("nation code is not two digits", reason="bad_nation")
    valid_to_text = _text(block, layout[F.VALID_TO])
    return IdCardRead(
        card_type=card.value, id_number=number, name=name, gender_code=gender,
        birth=parse_yyyymmdd(_text(block, layout[F.BIRTH])),
        valid_from=parse_yyyymmdd(_text(block, layout[F.VALID_FROM])),
        valid_to=None if valid_to_text == LONG_TERM else parse_yyyymmdd(valid_to_text),
        nation_code=nation)


def encode_text_block(card: SamCardType, fields: dict[F, str]) -> bytes:
    """Build a 256-byte block: each field UCS-2 LE, space-padded to its slot (for sims/tests).

    Raises ``ValueError`` for an unknown field or a value too long for its slot.
    """
    block = bytearray(" ".encode("utf-16-le") * (TEXT_LENGTH // 2))
    layout = LAYOUTS[card]
    for name, value in fields.items():
        slot = layout.get(name)
        if slot is None:
            raise ValueError(f"{card} has no field {name}")
        raw = value.encode("utf-16-le")
        if len(raw) > slot.length:
            raise ValueError(f"{name} does not fit in {slot.length} bytes")
        block[slot.offset:slot.offset + len(raw)] = raw
    block[FLAG_OFFSET:FLAG_OFFSET + 2] = card.flag.encode("utf-16-le")
    return bytes(block)


def yyyymmdd(d: date | None) -> str:
    """The block's date form; ``None`` is long-term (长期)."""
    return LONG_TERM if d is None else f"{d:%Y%m%d}"


__all__ = ["LAYOUTS", "LONG_TERM", "TEXT_LENGTH", "F", "SamCardType", "SamCodecError", "Slot",
           "TextBlockError", "card_type_of", "decode_text_block", "encode_text_block",
           "parse_yyyymmdd", "yyyymmdd"]
