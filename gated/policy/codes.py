"""Appointment QR codes: signed by the appointment system, so a guessed reference or a shared
screenshot cannot open the office area.

The payload (what the QR code holds, ASCII)::

    GQ1.<body>.<signature>

``body`` is the base64url (no padding) of a UTF-8 JSON object::

    {"ref": "R20261201-0042", "site": "demo-town", "day": "2026-12-01",
     "start": "09:30", "end": "10:00", "zone": "office", "svc": "social", "pri": false}

(``ref``, ``site``, ``day``, ``start``, ``end`` and ``zone`` required; ``svc`` the service
queue, ``pri`` the priority flag, both optional). ``signature`` is the base64url of either an
Ed25519 signature (64 bytes) by the appointment system's key, or an HMAC-SHA256 (32 bytes)
under a key shared with the booth, in both cases over the ASCII bytes ``GQ1.<body>``.
``sign_code`` makes one (for the appointment system's side and the tests).

``read_code`` checks the form, the signature and the site; the day and window are the policy's
(``decide``), and checking in once is the booth's (it remembers references checked in).
Everything here is pure apart from ``load_code_keys``, which reads the key files.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any

from gated.config import AppointmentsConfig

PREFIX = "GQ1."
MAX_CODE = 1024


class CodeProblem(enum.StrEnum):
    """Why a presented code does not check anyone in (each is an alarm; the hall admits)."""

    UNSIGNED = "unsigned"  # a bare reference, and the booth requires signed codes
    MALFORMED = "malformed"
    FORGED = "forged"  # the signature does not match
    WRONG_SITE = "wrong_site"
    EXPIRED = "expired"  # another day, or its window is over
    TOO_EARLY = "too_early"
    ALREADY_CHECKED_IN = "already_checked_in"  # a second presentation (a shared screenshot)


@dataclass(frozen=True)
class AppointmentCode:
    ref: str
    site: str
    day: date
    start: time
    end: time
    zone: str
    service: str = ""
    priority: bool = False


@dataclass(frozen=True)
class CodeKeys:
    """What the booth verifies codes with; either or both may be set."""

    hmac_key: bytes | None = None
    ed25519: Any = None  # cryptography's Ed25519PublicKey, imported only when configured

    @property
    def any(self) -> bool:
        return self.hmac_key is not None or self.ed25519 is not None

    def verify(self, signed: bytes, signature: bytes) -> bool:
        if self.hmac_key is not None and len(signature) == 32 and hmac.compare_digest(
                signature, hmac.new(self.hmac_key, signed, hashlib.sha256).digest()):
            return True
        if self.ed25519 is not None and len(signature) == 64:
            from cryptography.exceptions import InvalidSignature

            try:
                self.ed25519.verify(signature, signed)
                return True
            except InvalidSignature:
                return False
        return False


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def is_signed_form(text: str) -> bool:
    return text.startswith(PREFIX)


def read_code(text: str, keys: CodeKeys, site: str) -> AppointmentCode | CodeProblem:
    """The appointment a presented code stands for, or why it does not check anyone in."""
    if not is_signed_form(text):
        return CodeProblem.UNSIGNED
    if len(text) > MAX_CODE or text.count(".") != 2:
        return CodeProblem.MALFORMED
    signed, _, sig_text = text.rpartition(".")
    try:
        signature = _b64(sig_text)
        if len(signature) not in (32, 64):  # neither an HMAC-SHA256 nor an Ed25519 one
            return CodeProblem.MALFORMED
        authentic = keys.verify(signed.encode("ascii"), signature)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return CodeProblem.MALFORMED
    if not authentic:  # checked before the body is even parsed
        return CodeProblem.FORGED
    try:
        code = _parse(json.loads(_b64(signed[len(PREFIX):])))
    except (KeyError, TypeError, ValueError, binascii.Error, UnicodeDecodeError,
            RecursionError):
        return CodeProblem.MALFORMED
    return code if code.site == site else CodeProblem.WRONG_SITE


def _parse(body: Any) -> AppointmentCode:
    if not isinstance(body, dict):
        raise TypeError("not an object")
    strings = {k: body[k] for k in ("ref", "site", "day", "start", "end", "zone")}
    if not all(isinstance(v, str) and v for v in strings.values()):
        raise ValueError("required fields must be non-empty strings")
    start, end = time.fromisoformat(strings["start"]), time.fromisoformat(strings["end"])
    if end <= start:
        raise ValueError("end is not after start")
    service, priority = body.get("svc", ""), body.get("pri", False)
    if not isinstance(service, str) or not isinstance(priority, bool):
        raise TypeError("svc is a string, pri a boolean")
    return AppointmentCode(strings["ref"][:128], strings["site"],
                           date.fromisoformat(strings["day"]), start, end, strings["zone"],
                           service, priority)


def sign_code(fields: dict[str, Any], *, hmac_key: bytes | None = None,
              ed25519_private: Any = None) -> str:
    """A code as the appointment system prints it (``fields`` as in the module docstring)."""
    body = _b64e(json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode())
    signed = f"{PREFIX}{body}"
    if ed25519_private is not None:
        signature = ed25519_private.sign(signed.encode("ascii"))
    elif hmac_key is not None:
        signature = hmac.new(hmac_key, signed.encode("ascii"), hashlib.sha256).digest()
    else:
        raise ValueError("a key is needed")
    return f"{signed}.{_b64e(signature)}"


class CodeKeyError(ValueError):
    """A key file for appointment codes cannot be used; the message says why."""


def load_code_keys(cfg: AppointmentsConfig) -> CodeKeys:
    hmac_key = None
    if cfg.hmac_key_file is not None:
        raw = _read(cfg.hmac_key_file).strip()
        try:
            hmac_key = bytes.fromhex(raw.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            hmac_key = raw
        if len(hmac_key) < 16:
            raise CodeKeyError(f"{cfg.hmac_key_file} holds fewer than 16 bytes of key")
    public = None
    if cfg.public_key_file is not None:
        public = _ed25519(cfg.public_key_file, _read(cfg.public_key_file))
    return CodeKeys(hmac_key, public)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CodeKeyError(f"cannot read {path}: {e.strerror}") from None


def _ed25519(path: Path, raw: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
    except ImportError:
        raise CodeKeyError("Ed25519 keys need the cryptography package") from None
    text = raw.strip()
    try:
        if text.startswith(b"-----BEGIN"):
            key = load_pem_public_key(text)
            if not isinstance(key, Ed25519PublicKey):
                raise CodeKeyError(f"{path} is not an Ed25519 public key")
            return key
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.decode("ascii")))
    except (ValueError, UnicodeDecodeError) as e:
        raise CodeKeyError(f"{path} is not an Ed25519 public key (PEM or 64 hex "
                           f"characters): {e}") from None
