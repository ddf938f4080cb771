"""Bounded JSON: nesting depth, integer range and finite numbers are checked at parse time.

Python's ``json`` recurses once per nesting level (8,000 levels raise ``RecursionError``
deep inside whatever parses them), reads integers of any size (a list version of 10**400 later
overflows SQLite) and accepts ``NaN`` and ``Infinity``. Every such input is a ``PayloadError``
with a ``reason`` slug here, before any of it reaches a handler.

What a caller must know:
- ``loads`` returns any JSON value; ``loads_object`` insists on an object (what every command,
  list message and control request is).
- Depth is measured on the raw text before parsing: escapes dropped, everything but brackets
  and quotes deleted, strings removed, then one regex pass per level strips the innermost
  pairs. All of it runs in C: a 10 MB list snapshot costs about as much as parsing it.
- Integers must fit SQLite's signed 64 bits; floats must be finite.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 16  # the deepest message gated takes (a list snapshot) nests 4 levels
INT_MAX = 2**63 - 1
_ESCAPED = re.compile(rb"\\.", re.DOTALL)
_OTHER_BYTES = bytes(b for b in range(256) if b not in b'[]{}"')
_QUOTED = re.compile(rb'"[^"]*"')
_INNERMOST = re.compile(rb"\[\]|\{\}")


class PayloadError(ValueError):
    """A payload refused whole; ``reason`` is a slug (``malformed``, ``too_deep``, ...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 19:
        raise PayloadError("number_out_of_range", f"integer with {len(text)} digits")
    value = int(text)
    if not -INT_MAX - 1 <= value <= INT_MAX:
        raise PayloadError("number_out_of_range", "integer outside 64 bits")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise PayloadError("number_out_of_range", f"number {text[:20]} is not finite")
    return value


def _constant(name: str) -> float:
    raise PayloadError("malformed", f"{name} is not JSON")


def depth(raw: bytes) -> int:
    """How deep ``raw`` nests, counting at most ``MAX_DEPTH + 1``."""
    brackets = _QUOTED.sub(b"", _ESCAPED.sub(b"", raw).translate(None, _OTHER_BYTES))
    levels = 0
    while brackets and levels <= MAX_DEPTH:
        brackets, stripped = _INNERMOST.subn(b"", brackets)
        if not stripped:
            break  # unbalanced: json.loads says where
        levels += 1
    return levels + (1 if brackets and levels > MAX_DEPTH else 0)


def loads(raw: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH) -> Any:
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    if not data.strip():
        raise PayloadError("malformed", "empty payload")
    if depth(data) > max_depth:
        raise PayloadError("too_deep", f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(data, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except PayloadError:
        raise
    except RecursionError:  # only if max_depth was set beyond what the parser can take
        raise PayloadError("too_deep", "JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise PayloadError("malformed", f"not JSON: {e}") from None


def loads_object(raw: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    value = loads(raw, max_depth=max_depth)
    if not isinstance(value, dict):
        raise PayloadError("malformed", f"a JSON object is needed, not {type(value).__name__}")
    return value
