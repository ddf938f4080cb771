"""Badge type from ATR bytes, UID responses and masking: tables of literal bytes."""

from __future__ import annotations

import pytest

from drivers.pcsc_badge.atr import (
    BadgeType,
    badge_type,
    mask_uid,
    status_word,
    uid_from_response,
    xor_check,
)


@pytest.mark.parametrize(("atr_hex", "expected"), [
    # PROTOCOLS.md section 2, with the TCKs it gives
    ("3B8F8001804F0CA000000306030001000000006A", BadgeType.MIFARE_CLASSIC_1K),
    ("3B8F8001804F0CA0000003060300020000000069", BadgeType.MIFARE_CLASSIC_4K),
    ("3B8F8001804F0CA0000003060300030000000068", BadgeType.ULTRALIGHT),
    ("3B8180018080", BadgeType.DESFIRE),
    # a JCOP-like ISO 14443-4 card with 10 historical bytes
    ("3B8A80010031C173C8400000900090", BadgeType.ISO14443_4),
    # storage card with a card name we do not know (0026 Mifare Mini)
    ("3B8F8001804F0CA000000306030026000000004D", BadgeType.UNKNOWN),
    # wrong TCK
    ("3B8F8001804F0CA000000306030001000000006B", BadgeType.UNKNOWN),
    ("3B8180018081", BadgeType.UNKNOWN),
    # length does not match T0
    ("3B8F8001804F0CA00000030603000100006A", BadgeType.UNKNOWN),
    # contact card ATRs, empty, garbage
    ("3B0212345678", BadgeType.UNKNOWN),
    ("3BBE1100004101380000030000000000000290", BadgeType.UNKNOWN),
    ("", BadgeType.UNKNOWN),
    ("3B", BadgeType.UNKNOWN),
    ("3F8180018000", BadgeType.UNKNOWN),
])
def test_badge_type(atr_hex: str, expected: BadgeType) -> None:
    assert badge_type(bytes.fromhex(atr_hex)) is expected


def test_tck_of_the_documented_atrs() -> None:
    assert xor_check(bytes.fromhex("8F8001804F0CA0000003060300010000000000")) == 0x6A
    assert xor_check(bytes.fromhex("818001 80".replace(" ", ""))) == 0x80


@pytest.mark.parametrize(("resp_hex", "uid"), [
    ("04A1B2C3D4E5F69000", "04A1B2C3D4E5F6"),
    ("deadbeef9000", "DEADBEEF"),
    ("0102030405060708090A9000", "0102030405060708090A"),
    ("6A81", None),
    ("04A1B2C3D4E5F66300", None),
    ("9000", None),  # empty UID
    ("0102039000", None),  # 3 bytes is no UID size
    ("", None),
])
def test_uid_from_response(resp_hex: str, uid: str | None) -> None:
    assert uid_from_response(bytes.fromhex(resp_hex)) == uid
    assert uid_from_response(list(bytes.fromhex(resp_hex))) == uid


@pytest.mark.parametrize(("resp_hex", "sw"), [
    ("6A81", "6A81"), ("6d00", "6D00"), ("01029000", "9000"), ("01", "none"), ("", "none")])
def test_status_word(resp_hex: str, sw: str) -> None:
    assert status_word(bytes.fromhex(resp_hex)) == sw


@pytest.mark.parametrize(("uid", "masked"), [
    ("04A1B2C3D4E5F6", "04A1**********"), ("DEADBEEF", "DEAD****"), ("AB", "AB")])
def test_mask_uid(uid: str, masked: str) -> None:
    assert mask_uid(uid) == masked
