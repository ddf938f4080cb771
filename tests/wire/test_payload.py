"""Bounded JSON: every bad input is a PayloadError with a reason, never a traceback."""

from __future__ import annotations

import pytest

from gated.wire import MAX_DEPTH, PayloadError, loads, loads_object
from gated.wire.payload import depth


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "malformed"),
    (b"   \n", "malformed"),
    (b"{not json", "malformed"),
    (b"\xff\xfe", "malformed"),
    (b"NaN", "malformed"),
    (b'{"a": Infinity}', "malformed"),
    (b"[1e999]", "number_out_of_range"),
    (b'{"version": 1' + b"0" * 400 + b"}", "number_out_of_range"),
    (b'{"v": 9223372036854775808}', "number_out_of_range"),
    (b'{"v": -9223372036854775809}', "number_out_of_range"),
    (b"[" * 8000 + b"]" * 8000, "too_deep"),
    (b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), "too_deep"),
])
def test_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as e:
        loads(raw)
    assert e.value.reason == reason


@pytest.mark.parametrize(("raw", "value"), [
    (b'{"v": 9223372036854775807}', {"v": 2**63 - 1}),
    (b'{"v": -9223372036854775808}', {"v": -2**63}),
    (b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"[{"}', {"a": "[" * 36 + '"[{'}),
    (b'{"a": "x\\\\"}', {"a": "x\\"}),
    ("[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH, eval("[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH)),
    ('{"名": "张*"}', {"名": "张*"}),
    (b"1.5", 1.5),
])
def test_accepted(raw: bytes | str, value: object) -> None:
    assert loads(raw) == value


@pytest.mark.parametrize(("raw", "levels"), [
    (b"1", 0), (b"[]", 1), (b"[[],{}]", 2), (b'{"a": [{"b": "]]]]"}]}', 3),
])
def test_depth(raw: bytes, levels: int) -> None:
    assert depth(raw) == levels


@pytest.mark.parametrize("raw", [b"[]", b"3", b'"x"', b"null"])
def test_an_object_is_needed(raw: bytes) -> None:
    with pytest.raises(PayloadError, match="object"):
        loads_object(raw)
