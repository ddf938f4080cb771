"""What the policy sees of a person: never a name, a full ID number or a photo.

``gated.policy.identity`` builds a ``Credential`` from an ``IdCardRead`` (ID cards), and the app
builds one from a ``BadgeRead`` (staff badges), a ``QrRead`` (appointments,
``appointment_ref_from_qr``) or a guard's manual ticket. Everything in here may be stored and
published.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gated.policy.codes import AppointmentCode


class CredentialKind(enum.StrEnum):
    ID_CARD = "id_card"
    BADGE = "badge"
    APPOINTMENT_QR = "appointment_qr"
    MANUAL = "manual"  # the guard pressed "manual ticket" for a visitor without a card


class CardType(enum.StrEnum):
    RESIDENT = "resident"  # 居民身份证, flag ' '
    HMT_PERMIT = "hmt_permit"  # 港澳台居民居住证, flag 'J'
    FOREIGNER_2017 = "foreigner_2017"  # 外国人永久居留身份证 2017, flag 'I'
    FOREIGNER_2023 = "foreigner_2023"  # 2023 edition, flag 'Y'
    BADGE = "badge"
    NONE = "none"


class Gender(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


class CardValidity(enum.StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    UNKNOWN = "unknown"


APPOINTMENT_REF_MAX = 128


def appointment_ref_from_qr(payload: bytes) -> str:
    """The bare appointment reference a QR code carries, stripped and capped."""
    return qr_text(payload)[:APPOINTMENT_REF_MAX]


def qr_text(payload: bytes) -> str:
    """A QR code's payload as text, stripped (a signed code is a few hundred characters).

    Appointment systems print UTF-8 or GB 18030/GBK, and a QR code does not say which; some
    GBK text is valid UTF-8 too (预约 in GBK reads as "ԤԼ"). Both readings are tried and the
    one with fewer characters a reference would not hold (outside ASCII, CJK and full-width
    forms) wins; UTF-8 on a tie.
    """
    readings = []
    for encoding in ("utf-8", "gb18030"):
        try:
            readings.append(payload.decode(encoding))
        except UnicodeDecodeError:
            continue
    text = (max(readings, key=lambda t: -sum(not _plausible(c) for c in t)) if readings
            else payload.decode("utf-8", "replace"))
    return text.strip()


def _plausible(c: str) -> bool:
    return ((c.isascii() and (c.isprintable() or c.isspace())) or "\u4e00" <= c <= "\u9fff"
            or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uffef")


def age_band(age: int | None) -> str:
    """Coarse band published instead of the birth date: "0-17", "18-39", ..., "80+"."""
    if age is None:
        return "unknown"
    for upper, label in ((17, "0-17"), (39, "18-39"), (59, "40-59"), (69, "60-69"),
                         (79, "70-79")):
        if age <= upper:
            return label
    return "80+"


@dataclass(frozen=True)
class Credential:
    """One presentation at the booth, stripped to what policy and the centre may know.

    ``pseudonym`` is an HMAC of the ID number (or badge UID) under the site key: the same person
    is recognised across visits and booths of one site, and the number cannot be recovered.
    """

    kind: CredentialKind
    pseudonym: str
    card_type: CardType = CardType.NONE
    age: int | None = None
    gender: Gender = Gender.UNKNOWN
    validity: CardValidity = CardValidity.UNKNOWN
    masked_name: str = ""
    masked_number: str = ""
    appointment_ref: str = ""  # opaque reference from an appointment QR, not personal
    badge_uid: str = ""  # a staff badge's UID (upper-case hex); not personal data
    visit_date: date | None = None
    code: AppointmentCode | None = None  # a signed appointment code that verified
    code_problem: str = ""  # why a presented appointment code did not (``CodeProblem``)

    @property
    def age_band(self) -> str:
        return age_band(self.age)

    def public(self) -> dict[str, object]:
        """The fields an event may carry."""
        return {
            "kind": str(self.kind),
            "pseudonym": self.pseudonym,
            "card_type": str(self.card_type),
            "age_band": self.age_band,
            "gender": str(self.gender),
            "validity": str(self.validity),
            "masked_name": self.masked_name,
            "masked_number": self.masked_number,
            **({"code_problem": self.code_problem} if self.code_problem else {}),
        }
