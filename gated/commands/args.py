"""Reading a command's arguments: a missing or mistyped one is an ``ArgError``, answered as
``{"ok": false, "reason": <slug>}`` before anything reaches the state thread."""

from __future__ import annotations

from typing import Any


class ArgError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def arg(a: dict[str, Any], key: str, typ: type | tuple[type, ...]) -> Any:
    if key not in a:
        raise ArgError("missing_arg", f"missing argument {key!r}")
    value = a[key]
    if not isinstance(value, typ):
        raise ArgError("bad_arg", f"argument {key!r} has the wrong type")
    return value


def text(a: dict[str, Any], key: str, *, required: bool = True, limit: int = 200) -> str:
    if not required and key not in a:
        return ""
    value = arg(a, key, str)
    if len(value) > limit:
        raise ArgError("too_long", f"{key} has more than {limit} characters")
    return str(value)
