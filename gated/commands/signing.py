"""The command signature, as ``docs/signing.md`` specifies it for any language.

The signed string is the canonical JSON of ``{"args": args, "name": name, "nonce": nonce,
"ts": ts}``: keys sorted, no whitespace, strings as UTF-8 with only ``"``, ``\\`` and the
control characters escaped (what ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` and JavaScript's ``JSON.stringify`` with sorted keys both write). The
signature is the lowercase hex HMAC-SHA256 of that string under the command key.

Why the rules on what may be signed (``signable_problem``): the canonical string must be the
same in every language. ``ts`` is integer milliseconds since 1970 (a float would need
Python's float formatting); every number in ``args`` is an integer of at most 2^53 - 1 (the
integers every JSON library writes alike); keys are ASCII (so "sorted" means the same in
UTF-16 and in code points); strings are valid Unicode (a lone surrogate has no UTF-8 form).

The old form, ``ts`` as float seconds signed over Python's float formatting, is still
accepted for one release (``TsForm.LEGACY_SECONDS``): the JSON type tells them apart, an
integer is milliseconds and a number with a fraction or exponent is seconds. An integer
below ``TS_MS_MIN`` is neither (it would be seconds sent as an integer) and is refused.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import os
import re
import time
from typing import Any

from gated.booth import canonical

TS_MS_MIN = 10**11  # 1973 in milliseconds, the year 5138 in seconds: a clear line
MAX_SAFE_INT = 2**53 - 1
NONCE = re.compile(r"[\x21-\x7e]{8,64}")  # printable ASCII, no spaces
SIG = re.compile(r"[0-9a-fA-F]{64}")


class TsForm(enum.StrEnum):
    MILLISECONDS = "ms"
    LEGACY_SECONDS = "legacy_seconds"


class SignatureProblem(Exception):
    """A signed command that is refused before its signature is checked; ``reason`` is the
    reply's slug."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def canonical_command(name: str, args: dict[str, Any], ts: int | float, nonce: str) -> bytes:
    """The exact bytes that are signed."""
    return canonical({"args": args, "name": name, "nonce": nonce, "ts": ts})


def signature(key: bytes, name: str, args: dict[str, Any], ts: int | float, nonce: str) -> str:
    return hmac.new(key, canonical_command(name, args, ts, nonce), hashlib.sha256).hexdigest()


def sign_command(key: bytes, name: str, args: dict[str, Any], *, ts_ms: int | None = None,
                 nonce: str | None = None, legacy_ts: float | None = None) -> bytes:
    """The payload the centre publishes on ``cmd/<name>`` for a signed command. ``legacy_ts``
    (float seconds) builds the old form, for tests of its deprecation period."""
    nonce = nonce or os.urandom(16).hex()
    ts: int | float = legacy_ts if legacy_ts is not None else (
        time.time_ns() // 1_000_000 if ts_ms is None else ts_ms)
    return json.dumps({"args": args, "ts": ts, "nonce": nonce,
                       "sig": signature(key, name, args, ts, nonce)},
                      ensure_ascii=False).encode()


def ts_form(ts: object) -> TsForm:
    """Which form ``ts`` is in; ``SignatureProblem`` when it is neither."""
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise SignatureProblem("malformed", "ts (integer milliseconds since 1970) required")
    if isinstance(ts, float):
        return TsForm.LEGACY_SECONDS
    if ts < TS_MS_MIN:
        raise SignatureProblem("malformed", f"ts must be integer milliseconds since 1970; "
                                            f"{ts} looks like seconds")
    return TsForm.MILLISECONDS


def ts_seconds(ts: int | float, form: TsForm) -> float:
    return ts / 1000.0 if form is TsForm.MILLISECONDS else float(ts)


def check_nonce(nonce: object) -> str:
    if not isinstance(nonce, str) or not NONCE.fullmatch(nonce):
        raise SignatureProblem("malformed", "nonce must be 8-64 printable ASCII characters "
                                            "(no spaces)")
    return nonce


def signable_problem(value: object, path: str = "args") -> str | None:
    """Why ``value`` cannot be signed in the language-neutral form, or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if abs(value) <= MAX_SAFE_INT else f"{path}: integer beyond 2^53 - 1"
    if isinstance(value, float):
        return f"{path}: a signed command carries integers only, not {value!r}"
    if isinstance(value, str):
        return None if _valid_unicode(value) else f"{path}: string is not valid Unicode"
    if isinstance(value, list):
        for i, item in enumerate(value):
            if (problem := signable_problem(item, f"{path}[{i}]")) is not None:
                return problem
        return None
    if isinstance(value, dict):
        for k, item in value.items():
            if not k.isascii() or not _valid_unicode(k):
                return f"{path}: keys must be ASCII"
            if (problem := signable_problem(item, f"{path}.{k}")) is not None:
                return problem
        return None
    return f"{path}: {type(value).__name__} is not JSON"


def signature_matches(key: bytes, name: str, args: dict[str, Any], ts: int | float,
                      nonce: str, sig: str) -> bool:
    """Constant-time comparison; a ``sig`` that is not 64 hex digits never matches."""
    if not SIG.fullmatch(sig):
        return False
    try:
        expected = signature(key, name, args, ts, nonce)
    except UnicodeEncodeError:  # a lone surrogate in a legacy command's args
        return False
    return hmac.compare_digest(sig.lower().encode(), expected.encode())


def _valid_unicode(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
