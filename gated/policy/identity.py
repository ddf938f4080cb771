"""Identity and privacy: ID number validation, age and gender, masking, keyed pseudonyms.

The only place where a full ID number or name is handled after the driver: an ``IdCardRead``
comes in, a ``Credential`` (pseudonym, age, gender, validity, masked strings) goes out, and the
read is dropped by the caller. Nothing here logs.

What a caller must know:
- Pseudonyms are HMAC-SHA256 under the site key, truncated to 128 bits (32 hex characters),
  domain-separated: ``"id:" + number`` for cards, ``"badge:" + UID`` for badges, so a badge UID
  can never collide with an ID number. Every booth of a site must share the key file, or the
  same person gets different pseudonyms at different booths; losing it changes every pseudonym.
- The site key file holds 32 random bytes as 64 hex characters and a newline
  (``gated keygen FILE`` writes it, mode 0600). ``load_site_key`` also accepts raw binary key
  material of at least 32 bytes, and refuses files that others can read or the group can
  change (``root:gated 0640`` is how the install keeps it).
- Masking (what a ticket, screen or event may show): names keep their first character
  (张三 -> 张*, 欧阳娜娜 -> 欧***; latin names: first letter + ``***``); numbers keep the first 3
  and the last 4 characters (990***********006X), hiding region and birth date, as public
  notices and banks in China commonly do.
- Ages are counted in completed years; someone born on 29 February becomes a year older on
  1 March in common years.
- A card whose data cannot be right (check character, impossible or future dates, a number
  whose birth date disagrees with the card) is an ``UnreadableCard`` with a reason: the visitor
  goes to the guard. An expired or not-yet-valid card is still a ``Credential`` (``validity``
  says which): whether it opens the gate is policy.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import re
import stat
from datetime import date
from pathlib import Path

from drivers.base import BadgeRead, IdCardRead, UnreadableCard
from drivers.sam_idcard.gb11643 import check_char as gb11643_check_char
from gated.config import SECRET_FORBIDDEN
from gated.policy.credentials import CardType, CardValidity, Credential, CredentialKind, Gender

KEY_BYTES = 32
PSEUDONYM_HEX = 32
MAX_AGE = 150
_NUMBER = re.compile(r"[0-9]{17}[0-9X]")
_HEX = re.compile(rb"[0-9a-fA-F]+")
#: card types whose number is a GB 11643 citizen number (check character, birth date inside)
_GB11643_TYPES = frozenset({CardType.RESIDENT, CardType.HMT_PERMIT})


class SiteKeyError(Exception):
    """The site key file is missing, too short or readable by others; the message says what
    IT has to do."""


# --------------------------------------------------------------------------- site key


def generate_site_key(path: Path) -> None:
    """Write a new key (64 hex characters + newline) with mode 0600; refuses to overwrite."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, os.urandom(KEY_BYTES).hex().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def load_site_key(path: Path) -> bytes:
    """The key material of ``path``; raises ``SiteKeyError`` with the fix in its message."""
    path = Path(path)
    fix = f"create one with `gated keygen {path}` (or copy this site's key from another booth)"
    try:
        st = path.stat()
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SiteKeyError(f"site key file {path} does not exist: {fix}") from None
    except OSError as e:
        raise SiteKeyError(f"site key file {path} cannot be read ({e.strerror}): {fix}") from None
    if not stat.S_ISREG(st.st_mode):
        raise SiteKeyError(f"site key {path} is not a regular file: {fix}")
    if st.st_mode & SECRET_FORBIDDEN:
        raise SiteKeyError(
            f"site key file {path} has mode {stat.S_IMODE(st.st_mode):04o}: others can read it "
            f"or the group can change it; run `chmod 0640 {path}` (owner root or the daemon's "
            f"user, group gated)")
    text = raw.strip()
    key = bytes.fromhex(text.decode()) if _HEX.fullmatch(text) and len(text) % 2 == 0 else raw
    if len(key) < KEY_BYTES:
        raise SiteKeyError(f"site key file {path} holds {len(key)} bytes of key material, "
                           f"at least {KEY_BYTES} are needed: {fix}")
    return key


# --------------------------------------------------------------------------- numbers


def birth_in_number(number: str) -> date | None:
    """The birth date in digits 7-14, or ``None`` if it is not a date."""
    try:
        return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None


def validate_id_number(s: str) -> bool:
    """18 characters, upper-case X only, the right check character, a real birth date."""
    return (bool(_NUMBER.fullmatch(s)) and gb11643_check_char(s[:17]) == s[17]
            and birth_in_number(s) is not None)


def pseudonym(key: bytes, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key``, first 32 hex characters. Callers pass a
    domain-prefixed value (``"id:..."``, ``"badge:..."``); see ``id_pseudonym``."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


def id_pseudonym(key: bytes, number: str) -> str:
    return pseudonym(key, "id:" + number)


def badge_pseudonym(key: bytes, uid: str) -> str:
    return pseudonym(key, "badge:" + uid.upper())


# --------------------------------------------------------------------------- masking


def mask_name(name: str) -> str:
    """张三 -> 张*, 欧阳娜娜 -> 欧***, "TESTPERSON ALPHA" -> "T***"; empty stays empty."""
    name = name.strip()
    if not name:
        return ""
    first = name[0]
    if first.isascii():
        return first + "***"
    return first + "*" * max(1, len(name) - 1)


def mask_id_number(number: str) -> str:
    """First 3 and last 4 characters kept, the 11 between masked: ``990***********006X``."""
    number = number.strip()
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


# --------------------------------------------------------------------------- credentials


def age_on(birth: date, day: date) -> int:
    """Completed years on ``day`` (29 February birthdays count from 1 March in common years)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _gender(read: IdCardRead, card_type: CardType) -> Gender:
    code = read.gender_code.strip()
    if code == "1":
        return Gender.MALE
    if code == "2":
        return Gender.FEMALE
    if card_type in _GB11643_TYPES:  # validated by _unreadable: digit 17 is the gender
        return Gender.MALE if int(read.id_number[16]) % 2 else Gender.FEMALE
    return Gender.UNKNOWN


def _unreadable(read: IdCardRead, card_type: CardType, visit_date: date) -> str | None:
    """Why this card's data cannot be right, or ``None``."""
    if card_type in _GB11643_TYPES:
        if not _NUMBER.fullmatch(read.id_number):
            return "bad_id_number"
        if gb11643_check_char(read.id_number[:17]) != read.id_number[17]:
            return "bad_check_digit"
        born = birth_in_number(read.id_number)
        if born is None:
            return "bad_id_number"
        if read.birth is not None and born != read.birth:
            return "birth_mismatch"
    elif not read.id_number.strip():
        return "bad_id_number"
    if read.birth is None or read.valid_from is None:
        return "bad_date"
    if read.birth > visit_date:
        return "birth_in_future"
    if age_on(read.birth, visit_date) > MAX_AGE:
        return "impossible_dates"
    if read.valid_from < read.birth or (read.valid_to is not None
                                        and read.valid_to < read.valid_from):
        return "impossible_dates"
    return None


def credential_from_card(read: IdCardRead, key: bytes,
                         visit_date: date) -> Credential | UnreadableCard:
    """The credential for one card presentation, or why the card cannot be trusted."""
    try:
        card_type = CardType(read.card_type)
    except ValueError:
        return UnreadableCard("unknown_card_type")
    if card_type not in (CardType.RESIDENT, CardType.HMT_PERMIT, CardType.FOREIGNER_2017,
                         CardType.FOREIGNER_2023):
        return UnreadableCard("unknown_card_type")
    why = _unreadable(read, card_type, visit_date)
    if why is not None:
        return UnreadableCard(why)
    assert read.birth is not None and read.valid_from is not None  # checked just above
    if visit_date < read.valid_from:
        validity = CardValidity.NOT_YET_VALID
    elif read.valid_to is not None and visit_date > read.valid_to:
        validity = CardValidity.EXPIRED
    else:
        validity = CardValidity.VALID
    return Credential(
        kind=CredentialKind.ID_CARD, pseudonym=id_pseudonym(key, read.id_number),
        card_type=card_type, age=age_on(read.birth, visit_date),
        gender=_gender(read, card_type), validity=validity,
        masked_name=mask_name(read.name), masked_number=mask_id_number(read.id_number),
        visit_date=visit_date)


class Unreadable(enum.StrEnum):
    """What the visitor with an unreadable card is told to do."""

    PRESENT_AGAIN = "present_again"  # the read went wrong, the card is probably fine
    SEE_GUARD = "see_guard"  # the card itself cannot be read or cannot be right


#: reads that went wrong on the way (card moved, a noisy line): another try will likely work
PRESENT_AGAIN_REASONS = frozenset({"read_failed", "bad_checksum", "truncated", "garbage",
                                   "bad_length", "random_failed", "card_removed"})
#: what a genuine, undamaged card never gives: the guard looks at it (an alarm, not just an
#: event): the SAM could not authenticate the chip, or the chip's data contradicts itself
SUSPECT_REASONS = frozenset({"sam_auth_card_failed", "bad_check_digit", "birth_mismatch",
                             "birth_in_future", "impossible_dates", "bad_id_number"})


def unreadable_action(reason: str) -> tuple[Unreadable, bool]:
    """What to tell the visitor, and whether the card is suspect (an alarm for the guard)."""
    action = (Unreadable.PRESENT_AGAIN if reason in PRESENT_AGAIN_REASONS
              else Unreadable.SEE_GUARD)
    return action, reason in SUSPECT_REASONS


def credential_from_badge(read: BadgeRead, key: bytes) -> Credential:
    """A staff badge: pseudonym of its UID, and the UID itself (not personal data) for the
    staff list lookup."""
    uid = read.uid.strip().upper()
    return Credential(kind=CredentialKind.BADGE, pseudonym=badge_pseudonym(key, uid),
                      card_type=CardType.BADGE, badge_uid=uid)


__all__ = [
    "PRESENT_AGAIN_REASONS", "SUSPECT_REASONS", "SiteKeyError", "Unreadable", "age_on",
    "badge_pseudonym", "birth_in_number", "credential_from_badge", "credential_from_card",
    "gb11643_check_char", "generate_site_key", "id_pseudonym", "load_site_key",
    "mask_id_number", "mask_name", "pseudonym", "unreadable_action", "validate_id_number",
]
