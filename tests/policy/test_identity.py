"""Table tests of gated.policy.identity: check characters, dates, masking, pseudonyms, site keys."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
from datetime import date
from pathlib import Path

import pytest

from drivers.base import BadgeRead, IdCardRead, UnreadableCard
from drivers.sam_idcard.text import decode_text_block
from gated.policy.credentials import CardType, CardValidity, Credential, CredentialKind, Gender
from gated.policy.identity import (
    SiteKeyError,
    age_on,
    credential_from_badge,
    credential_from_card,
    gb11643_check_char,
    generate_site_key,
    load_site_key,
    mask_id_number,
    mask_name,
    pseudonym,
    validate_id_number,
)
from tests.support.cards import (
    ADULT,
    BAD_CHECK_NUMBER,
    ELDER_LONG_TERM,
    EXPIRED,
    FOREIGNER_2017,
    FOREIGNER_2017_LATIN,
    FOREIGNER_2023,
    HMT,
    LEAP_DAY,
    TAIWAN,
    TEST_CARDS,
)

KEY = bytes(range(32))
DAY = date(2025, 6, 1)


def read_of(key: str) -> IdCardRead:
    return decode_text_block(TEST_CARDS[key].text_block())


# --------------------------------------------------------------------------- numbers

@pytest.mark.parametrize("number", [
    "99010519800101001X", "99030519500228006X", "990107200002290036", "810000199001010019",
    "830000198512310020", "990102194901010122", "990105194912310023",
])
def test_check_characters_of_synthetic_numbers(number: str) -> None:
    assert gb11643_check_char(number[:17]) == number[17]
    assert validate_id_number(number)


@pytest.mark.parametrize(("first17", "check"), [
    ("00000000000000000", "1"),  # sum 0 -> "10X98765432"[0]
    ("10000000000000000", "5"),  # weight 7 -> index 7
    ("00000000000000001", "X"),  # weight 2 -> index 2
    ("00000000000000005", "2"),  # 5 * 2 = 10 -> index 10
    ("00000000000000010", "8"),  # weight 4 -> index 4
])
def test_check_character_table(first17: str, check: str) -> None:
    assert gb11643_check_char(first17) == check


@pytest.mark.parametrize("number", [
    BAD_CHECK_NUMBER,  # wrong check character
    "99030519500228006x",  # lower-case x is not what a card holds
    "99010519800101001",  # 17 characters
    "9901051980010100166",  # 19
    "990105198002300019",  # 30 February: check character right, date impossible
    "99010519800101001A", "", "９９０１０５１９８００１０１００１Ｘ",
])
def test_invalid_numbers(number: str) -> None:
    assert not validate_id_number(number)


def test_impossible_date_number_really_has_a_right_check_character() -> None:
    assert gb11643_check_char("99010519800230001") == "9"


@pytest.mark.parametrize("bad", ["", "1234", "9901051980010100a",
                                 "９９０１０５１９８００１０１００１"])
def test_check_char_refuses_non_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        gb11643_check_char(bad)


# --------------------------------------------------------------------------- ages

@pytest.mark.parametrize(("birth", "day", "age"), [
    (date(1980, 1, 1), date(2025, 1, 1), 45),
    (date(1980, 1, 2), date(2025, 1, 1), 44),
    (date(2000, 2, 29), date(2024, 2, 29), 24),  # leap year birthday
    (date(2000, 2, 29), date(2025, 2, 28), 24),  # common year: not yet on 28 February
    (date(2000, 2, 29), date(2025, 3, 1), 25),  # ... but on 1 March
    (date(2025, 6, 1), date(2025, 6, 1), 0),
    (date(1965, 6, 2), date(2025, 6, 1), 59), (date(1965, 6, 1), date(2025, 6, 1), 60),
])
def test_age_on(birth: date, day: date, age: int) -> None:
    assert age_on(birth, day) == age


# --------------------------------------------------------------------------- masking

@pytest.mark.parametrize(("name", "masked"), [
    ("张三", "张*"), ("欧阳娜娜", "欧***"), ("测试甲", "测**"), ("李", "李*"),
    ("TESTPERSON ALPHA", "T***"), (" ", ""), ("", ""),
])
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(("number", "masked"), [
    ("99010519800101001X", "990***********001X"),
    ("99030519500228006X", "990***********006X"),
    ("USA990078061501", "USA********1501"),
    ("1234567", "*******"), ("", ""),
])
def test_mask_id_number(number: str, masked: str) -> None:
    assert mask_id_number(number) == masked
    assert len(mask_id_number(number)) == len(number)


# --------------------------------------------------------------------------- pseudonyms

def test_pseudonym_is_hmac_sha256_truncated() -> None:
    want = hmac.new(KEY, b"id:99010519800101001X", hashlib.sha256).hexdigest()[:32]
    assert pseudonym(KEY, "id:99010519800101001X") == want


def test_pseudonyms_are_keyed_stable_and_domain_separated() -> None:
    a = credential_from_card(read_of("adult"), KEY, DAY)
    b = credential_from_card(read_of("adult"), KEY, date(2030, 1, 1))
    other_key = credential_from_card(read_of("adult"), bytes(32), DAY)
    assert isinstance(a, Credential) and isinstance(b, Credential)
    assert isinstance(other_key, Credential)
    assert a.pseudonym == b.pseudonym != other_key.pseudonym
    assert len(a.pseudonym) == 32 and ADULT.id_number not in a.pseudonym
    badge = credential_from_badge(BadgeRead(uid=ADULT.id_number, card_type="mifare"), KEY)
    assert badge.pseudonym != a.pseudonym  # same string, different domain


# --------------------------------------------------------------------------- credentials

@pytest.mark.parametrize(("key", "card_type", "age", "gender", "validity", "masked_name"), [
    ("adult", CardType.RESIDENT, 45, Gender.MALE, CardValidity.VALID, "测**"),
    ("elder_long_term", CardType.RESIDENT, 75, Gender.FEMALE, CardValidity.VALID, "测**"),
    ("leap_day", CardType.RESIDENT, 25, Gender.MALE, CardValidity.VALID, "欧***"),
    ("expired", CardType.RESIDENT, 76, Gender.FEMALE, CardValidity.EXPIRED, "测**"),
    ("hmt", CardType.HMT_PERMIT, 35, Gender.MALE, CardValidity.VALID, "测**"),
    ("taiwan", CardType.HMT_PERMIT, 39, Gender.FEMALE, CardValidity.VALID, "测**"),
    ("foreigner_2017", CardType.FOREIGNER_2017, 46, Gender.MALE, CardValidity.VALID, "测**"),
    ("foreigner_2017_latin", CardType.FOREIGNER_2017, 37, Gender.FEMALE, CardValidity.VALID,
     "T***"),
    ("foreigner_2023", CardType.FOREIGNER_2023, 46, Gender.MALE, CardValidity.VALID, "测**"),
])
def test_credential_from_every_card_type(key: str, card_type: CardType, age: int,
                                         gender: Gender, validity: CardValidity,
                                         masked_name: str) -> None:
    c = credential_from_card(read_of(key), KEY, DAY)
    assert isinstance(c, Credential)
    assert (c.kind, c.card_type, c.age, c.gender, c.validity, c.masked_name) == (
        CredentialKind.ID_CARD, card_type, age, gender, validity, masked_name)
    assert c.visit_date == DAY
    number = TEST_CARDS[key].id_number  # type: ignore[attr-defined]
    assert c.masked_number == mask_id_number(number)
    public = repr(c) + repr(c.public())
    assert number not in public
    for attr in ("name", "chinese_name", "english_name"):
        value = getattr(TEST_CARDS[key], attr, "")
        assert not value or value not in public


@pytest.mark.parametrize(("day", "validity"), [
    (date(2015, 2, 28), CardValidity.NOT_YET_VALID),
    (date(2015, 3, 1), CardValidity.VALID),  # first day
    (date(2035, 3, 1), CardValidity.VALID),  # last day
    (date(2035, 3, 2), CardValidity.EXPIRED),
])
def test_validity_boundaries(day: date, validity: CardValidity) -> None:
    c = credential_from_card(read_of("adult"), KEY, day)
    assert isinstance(c, Credential) and c.validity == validity


def test_long_term_never_expires() -> None:
    c = credential_from_card(read_of("elder_long_term"), KEY, date(2099, 12, 31))
    assert isinstance(c, Credential) and c.validity == CardValidity.VALID


def change(read: IdCardRead, **kw: object) -> IdCardRead:
    return dataclasses.replace(read, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("read", "reason"), [
    (change(read_of("adult"), id_number=BAD_CHECK_NUMBER), "bad_check_digit"),
    (change(read_of("hmt"), id_number="810000199001010018"), "bad_check_digit"),
    (change(read_of("adult"), id_number="99010519800101001"), "bad_id_number"),
    (change(read_of("adult"), id_number="990105198002300019"), "bad_id_number"),
    (change(read_of("adult"), birth=date(1980, 1, 2)), "birth_mismatch"),
    (change(read_of("foreigner_2023"), birth=date(2026, 1, 1),
            valid_from=date(2026, 1, 1)), "birth_in_future"),
    (change(read_of("foreigner_2017"), birth=date(1850, 1, 1)), "impossible_dates"),
    (change(read_of("foreigner_2017"), valid_to=date(2016, 1, 1)), "impossible_dates"),
    (change(read_of("foreigner_2017"), valid_from=date(1970, 1, 1)), "impossible_dates"),
    (change(read_of("foreigner_2017"), birth=None), "bad_date"),
    (change(read_of("foreigner_2017"), id_number=" "), "bad_id_number"),
    (change(read_of("adult"), card_type="passport"), "unknown_card_type"),
    (change(read_of("adult"), card_type="badge"), "unknown_card_type"),
])
def test_cards_that_cannot_be_right_are_unreadable(read: IdCardRead, reason: str) -> None:
    assert credential_from_card(read, KEY, DAY) == UnreadableCard(reason)


@pytest.mark.parametrize(("code", "gender"), [
    ("1", Gender.MALE), ("2", Gender.FEMALE),
    ("0", Gender.MALE), ("9", Gender.MALE),  # falls back to the 17th digit (odd: male)
])
def test_gender_falls_back_to_the_17th_digit(code: str, gender: Gender) -> None:
    c = credential_from_card(change(read_of("adult"), gender_code=code), KEY, DAY)
    assert isinstance(c, Credential) and c.gender == gender
    c = credential_from_card(change(read_of("elder_long_term"), gender_code="0"), KEY, DAY)
    assert isinstance(c, Credential) and c.gender == Gender.FEMALE


def test_foreigner_without_gender_code_is_unknown() -> None:
    c = credential_from_card(change(read_of("foreigner_2017"), gender_code="9"), KEY, DAY)
    assert isinstance(c, Credential) and c.gender == Gender.UNKNOWN


def test_badge_credential_keeps_uid_for_policy() -> None:
    c = credential_from_badge(BadgeRead(uid="04a1b2c3", card_type="mifare_classic_1k"), KEY)
    assert c.kind == CredentialKind.BADGE and c.card_type == CardType.BADGE
    assert c.badge_uid == "04A1B2C3"
    assert c.pseudonym == pseudonym(KEY, "badge:04A1B2C3")


def test_known_cards_are_all_covered() -> None:
    assert {ADULT, ELDER_LONG_TERM, LEAP_DAY, EXPIRED, HMT, TAIWAN, FOREIGNER_2017,
            FOREIGNER_2017_LATIN, FOREIGNER_2023} == set(TEST_CARDS.values())


# --------------------------------------------------------------------------- site key

def test_generated_key_loads(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "site.key"
    generate_site_key(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    text = path.read_text()
    assert len(text.strip()) == 64 and text.endswith("\n")
    assert load_site_key(path) == bytes.fromhex(text.strip())


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "site.key"
    generate_site_key(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        generate_site_key(path)
    assert path.read_bytes() == before


def test_generated_keys_differ(tmp_path: Path) -> None:
    generate_site_key(tmp_path / "a")
    generate_site_key(tmp_path / "b")
    assert load_site_key(tmp_path / "a") != load_site_key(tmp_path / "b")


def test_raw_binary_key_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "raw.key"
    path.write_bytes(b"\xff" * 40)
    path.chmod(0o400)
    assert load_site_key(path) == b"\xff" * 40


@pytest.mark.parametrize(("content", "mode", "fragment"), [
    (None, 0o600, "does not exist"),
    (b"ab" * 32 + b"\n", 0o644, "chmod 0640"),
    (b"ab" * 32 + b"\n", 0o660, "chmod 0640"),
    (b"ab" * 16 + b"\n", 0o600, "at least 32"),
    (b"", 0o600, "at least 32"),
    (b"short", 0o600, "at least 32"),
])
def test_bad_key_files_tell_it_what_to_do(tmp_path: Path, content: bytes | None, mode: int,
                                          fragment: str) -> None:
    path = tmp_path / "site.key"
    if content is not None:
        path.write_bytes(content)
        os.chmod(path, mode)
    with pytest.raises(SiteKeyError) as e:
        load_site_key(path)
    assert fragment in str(e.value)
    if fragment != "chmod 0640":
        assert f"gated keygen {path}" in str(e.value)


def test_a_key_the_daemon_group_reads_is_accepted(tmp_path: Path) -> None:
    """The install keeps the key root:gated 0640: the daemon's user reads it by its group."""
    generate_site_key(tmp_path / "site.key")
    (tmp_path / "site.key").chmod(0o640)
    assert len(load_site_key(tmp_path / "site.key")) == 32


def test_key_directory_is_not_a_key(tmp_path: Path) -> None:
    with pytest.raises(SiteKeyError):
        load_site_key(tmp_path)
