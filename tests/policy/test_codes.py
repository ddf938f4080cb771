"""Signed appointment codes: read, verified, and decided on (table tests, no devices)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gated.config import GatedConfig
from gated.policy import (
    AppointmentCode,
    BoothFlags,
    CodeKeys,
    CodeProblem,
    Credential,
    CredentialKind,
    Outcome,
    VisitorClass,
    decide,
    read_code,
    sign_code,
)

HMAC_KEY = b"k" * 32
PRIVATE = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEYS = CodeKeys(hmac_key=HMAC_KEY, ed25519=PRIVATE.public_key())
FIELDS: dict[str, Any] = {"ref": "R-0042", "site": "demo", "day": "2026-12-01", "start": "09:30",
                          "end": "10:00", "zone": "office", "svc": "social", "pri": True}
TZ = ZoneInfo("Asia/Shanghai")
CFG = GatedConfig.model_validate({
    "site": {"id": "demo"}, "booth": {"id": "b"},
    "schedule": {"hours": {d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri")}},
    "services": {"general": {"name": "综合", "prefix": "A"}, "social": {"name": "社保",
                                                                       "prefix": "B"}}})


class NoLists:
    def staff_badge(self, uid: str) -> None: return None
    def appointments(self, pseudonym: str, day: object) -> list[Any]: return []
    def appointment(self, ref: str) -> None: return None
    def alert(self, key: str) -> None: return None


@pytest.mark.parametrize("how", ["hmac", "ed25519"])
def test_a_signed_code_reads_back(how: str) -> None:
    text = (sign_code(FIELDS, hmac_key=HMAC_KEY) if how == "hmac"
            else sign_code(FIELDS, ed25519_private=PRIVATE))
    code = read_code(text, KEYS, "demo")
    assert isinstance(code, AppointmentCode)
    assert (code.ref, code.zone, code.service, code.priority) == ("R-0042", "office", "social",
                                                                  True)


def _tamper(text: str) -> str:
    prefix, body, sig = text.split(".")
    return ".".join((prefix, body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1], sig))


@pytest.mark.parametrize(("text", "problem"), [
    ("R-0042", CodeProblem.UNSIGNED),  # a bare reference: guessable
    (sign_code(FIELDS, hmac_key=b"x" * 32), CodeProblem.FORGED),
    (sign_code(FIELDS, ed25519_private=Ed25519PrivateKey.generate()), CodeProblem.FORGED),
    (_tamper(sign_code(FIELDS, hmac_key=HMAC_KEY)), CodeProblem.FORGED),
    (sign_code({**FIELDS, "site": "other-town"}, hmac_key=HMAC_KEY), CodeProblem.WRONG_SITE),
    (sign_code({**FIELDS, "end": "09:00"}, hmac_key=HMAC_KEY), CodeProblem.MALFORMED),
    (sign_code({k: v for k, v in FIELDS.items() if k != "zone"}, hmac_key=HMAC_KEY),
     CodeProblem.MALFORMED),
    ("GQ1.not base64!.xx", CodeProblem.MALFORMED),
    ("GQ1." + "A" * 2000 + ".x", CodeProblem.MALFORMED),
])
def test_codes_that_check_nobody_in(text: str, problem: CodeProblem) -> None:
    assert read_code(text, KEYS, "demo") is problem


def test_no_key_means_every_signed_code_is_forged() -> None:
    assert read_code(sign_code(FIELDS, hmac_key=HMAC_KEY), CodeKeys(), "demo") is \
        CodeProblem.FORGED


def _decide(cred: Credential, at: str, **flags: Any) -> Any:
    return decide(cred, NoLists(), CFG, datetime.fromisoformat(at).replace(tzinfo=TZ),
                  BoothFlags(**flags))


CODE = read_code(sign_code(FIELDS, hmac_key=HMAC_KEY), KEYS, "demo")
assert isinstance(CODE, AppointmentCode)
QR = Credential(kind=CredentialKind.APPOINTMENT_QR, pseudonym="", appointment_ref=CODE.ref,
                code=CODE)


@pytest.mark.parametrize(("at", "flags", "outcome", "zone", "reason"), [
    ("2026-12-01 09:40", {}, Outcome.ADMIT, "office", "appointment"),
    ("2026-12-01 09:00", {}, Outcome.ADMIT, "office", "appointment"),  # 30 min early is fine
    ("2026-12-01 08:59", {}, Outcome.SEE_GUARD, "hall", "appointment_too_early"),
    ("2026-12-01 10:00", {}, Outcome.SEE_GUARD, "hall", "appointment_expired"),
    ("2026-12-02 09:40", {}, Outcome.SEE_GUARD, "hall", "appointment_expired"),
    ("2026-11-30 09:40", {}, Outcome.SEE_GUARD, "hall", "appointment_too_early"),
    ("2026-12-01 09:40", {"checked_in": True}, Outcome.SEE_GUARD, "hall",
     "appointment_already_checked_in"),
])
def test_decisions_on_a_valid_code(at: str, flags: dict[str, Any], outcome: Outcome,
                                   zone: str, reason: str) -> None:
    d = _decide(QR, at, **flags)
    assert (d.outcome, d.zone, d.reason) == (outcome, zone, reason)
    assert d.ticket and d.open_gate  # whatever the code, the hall admits with a ticket
    if outcome is Outcome.ADMIT:
        assert d.visitor is VisitorClass.APPOINTMENT and d.service == "social" and d.priority


@pytest.mark.parametrize("problem", [p for p in CodeProblem])
def test_every_code_problem_goes_to_the_guard_and_the_hall_admits(problem: CodeProblem) -> None:
    cred = replace(QR, code=None, appointment_ref="", code_problem=str(problem))
    d = _decide(cred, "2026-12-01 09:40")
    assert (d.outcome, d.zone, d.reason) == (Outcome.SEE_GUARD, "hall", f"appointment_{problem}")
    assert d.alerts and d.ticket and d.open_gate and d.visitor is VisitorClass.UNKNOWN
