"""Cards for the SAM reader simulator: fields in, the 256-byte text block a real card holds out.

Used by ``drivers.sim.sam_reader``, ``gated simulate`` and the tests. Every personal field is
excluded from ``repr`` so a simulator log line cannot carry a (synthetic) name or number.
``RawCard`` presents an arbitrary block, for malformed-card tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from drivers.sam_idcard.text import F, SamCardType, encode_text_block, yyyymmdd


class SimCard(Protocol):
    def text_block(self) -> bytes: ...


@dataclass(frozen=True)
class ResidentCard:
    """居民身份证. ``valid_to=None`` is long-term (长期)."""

    name: str = field(repr=False)
    id_number: str = field(repr=False)
    gender_code: str = field(repr=False)
    birth: date = field(repr=False)
    valid_from: date = field(repr=False)
    valid_to: date | None = field(repr=False)
    nation_code: str = field(default="01", repr=False)
    address: str = field(default="某省某市某区测试路1号", repr=False)
    authority: str = field(default="某市公安局某分局", repr=False)

    def text_block(self) -> bytes:
        return encode_text_block(SamCardType.RESIDENT, {
            F.NAME: self.name, F.GENDER: self.gender_code, F.NATION: self.nation_code,
            F.BIRTH: yyyymmdd(self.birth), F.ADDRESS: self.address, F.NUMBER: self.id_number,
            F.AUTHORITY: self.authority, F.VALID_FROM: yyyymmdd(self.valid_from),
            F.VALID_TO: yyyymmdd(self.valid_to)})


@dataclass(frozen=True)
class HmtPermitCard:
    """港澳台居民居住证 (flag 'J'); numbers start 810000 / 820000 / 830000."""

    name: str = field(repr=False)
    id_number: str = field(repr=False)
    gender_code: str = field(repr=False)
    birth: date = field(repr=False)
    valid_from: date = field(repr=False)
    valid_to: date | None = field(repr=False)
    pass_number: str = field(default="H12345678", repr=False)
    issue_count: str = field(default="01", repr=False)
    address: str = field(default="某省某市某区测试路2号", repr=False)
    authority: str = field(default="某市公安局", repr=False)

    def text_block(self) -> bytes:
        return encode_text_block(SamCardType.HMT_PERMIT, {
            F.NAME: self.name, F.GENDER: self.gender_code, F.BIRTH: yyyymmdd(self.birth),
            F.ADDRESS: self.address, F.NUMBER: self.id_number, F.AUTHORITY: self.authority,
            F.VALID_FROM: yyyymmdd(self.valid_from), F.VALID_TO: yyyymmdd(self.valid_to),
            F.PASS_NUMBER: self.pass_number, F.ISSUE_COUNT: self.issue_count})


@dataclass(frozen=True)
class Foreigner2017Card:
    """外国人永久居留身份证, 2017 edition (flag 'I'): 15-character permit number."""

    english_name: str = field(repr=False)
    id_number: str = field(repr=False)
    gender_code: str = field(repr=False)
    birth: date = field(repr=False)
    valid_from: date = field(repr=False)
    valid_to: date | None = field(repr=False)
    chinese_name: str = field(default="", repr=False)
    nationality: str = "USA"
    version: str = "01"
    authority_code: str = "1500"

    def text_block(self) -> bytes:
        return encode_text_block(SamCardType.FOREIGNER_2017, {
            F.ENGLISH_NAME: self.english_name, F.GENDER: self.gender_code,
            F.NUMBER: self.id_number, F.NATIONALITY: self.nationality,
            F.NAME: self.chinese_name, F.VALID_FROM: yyyymmdd(self.valid_from),
            F.VALID_TO: yyyymmdd(self.valid_to), F.BIRTH: yyyymmdd(self.birth),
            F.VERSION: self.version, F.AUTHORITY_CODE: self.authority_code})


@dataclass(frozen=True)
class Foreigner2023Card:
    """外国人永久居留身份证, 2023 edition (flag 'Y'): 18-character number starting with 9."""

    name: str = field(repr=False)
    id_number: str = field(repr=False)
    gender_code: str = field(repr=False)
    birth: date = field(repr=False)
    valid_from: date = field(repr=False)
    valid_to: date | None = field(repr=False)
    english_name: str = field(default="", repr=False)
    nationality: str = "USA"
    renewal_count: str = "00"

    def text_block(self) -> bytes:
        english = self.english_name
        return encode_text_block(SamCardType.FOREIGNER_2023, {
            F.NAME: self.name, F.GENDER: self.gender_code, F.RENEWAL_COUNT: self.renewal_count,
            F.BIRTH: yyyymmdd(self.birth), F.ENGLISH_NAME: english[:35],
            F.NUMBER: self.id_number, F.VALID_FROM: yyyymmdd(self.valid_from),
            F.VALID_TO: yyyymmdd(self.valid_to), F.ENGLISH_NAME_2: english[35:46],
            F.NATIONALITY: self.nationality})


@dataclass(frozen=True)
class RawCard:
    """A card whose chip holds ``block`` as is (malformed-data tests)."""

    block: bytes = field(repr=False)

    def text_block(self) -> bytes:
        return self.block


__all__ = ["Foreigner2017Card", "Foreigner2023Card", "HmtPermitCard", "RawCard",
           "ResidentCard", "SimCard"]
