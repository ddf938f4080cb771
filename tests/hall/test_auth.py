"""Sign-in: salted scrypt secrets, lockout after repeated wrong PINs, sessions that expire, CSRF
tokens. The clock is passed in, so the periods are exact, not slept."""

from __future__ import annotations

import pytest

from gated.config import HallRole, HallUser, HallWebConfig
from gated.hall.auth import Auth, SignInRefused, hash_secret, verify_secret

SECRET_C07 = hash_secret("2468")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(clock: Clock) -> Auth:
    cfg = HallWebConfig(users={
        "c07": HallUser(role=HallRole.COUNTER, secret=SECRET_C07, counters=["3"]),
        "g01": HallUser(role=HallRole.GUARD, secret=hash_secret("1357"))},
        signin_max_failures=3, signin_lockout_s=60, session_idle_s=600, session_max_s=3600)
    return Auth(cfg, clock)


def test_secrets_are_salted_and_verified() -> None:
    a, b = hash_secret("2468"), hash_secret("2468")
    assert a != b and a.startswith("scrypt$") and "2468" not in a
    assert verify_secret("2468", a) and not verify_secret("2469", a)
    assert not verify_secret("2468", "scrypt$1$1$1$zz$zz")  # a mangled secret never matches
    with pytest.raises(ValueError):
        hash_secret("12")
    with pytest.raises(ValueError, match="passwd"):  # a plain PIN in the config is refused
        HallUser(role=HallRole.GUARD, secret="1357")


def test_wrong_pins_lock_the_user_out_even_for_the_right_pin() -> None:
    clock = Clock()
    auth = make(clock)
    for _ in range(3):
        with pytest.raises(SignInRefused) as e:
            auth.sign_in("c07", "0000", "3", "10.0.0.5")
        assert e.value.reason == "wrong_pin"
    with pytest.raises(SignInRefused) as e:
        auth.sign_in("c07", "2468", "3", "10.0.0.5")
    assert (e.value.reason, e.value.status) == ("locked_out", 429)
    assert auth.sign_in("g01", "1357", None, "10.0.0.5").role is HallRole.GUARD  # others not
    clock.t += 61
    assert auth.sign_in("c07", "2468", "3", "10.0.0.5").counter == "3"


def test_an_address_trying_many_names_is_locked_out() -> None:
    clock = Clock()
    auth = make(clock)
    for i in range(9):
        with pytest.raises(SignInRefused):
            auth.sign_in(f"guess{i}", "0000", None, "10.0.0.9")
    with pytest.raises(SignInRefused) as e:
        auth.sign_in("g01", "1357", None, "10.0.0.9")
    assert e.value.reason == "locked_out"
    assert auth.sign_in("g01", "1357", None, "10.0.0.10")  # another address is not


def test_counter_rules() -> None:
    auth = make(Clock())
    with pytest.raises(SignInRefused) as e:
        auth.sign_in("c07", "2468", None, "a")
    assert e.value.reason == "counter_required"
    with pytest.raises(SignInRefused) as e:
        auth.sign_in("c07", "2468", "5", "a")
    assert e.value.reason == "counter_not_allowed"
    s = auth.sign_in("c07", "2468", "3", "a")
    assert s.actor() == {"source": "hall", "role": "counter", "clerk": "c07", "counter": "3"}


def test_sessions_expire_when_idle_or_old_and_csrf_is_per_session() -> None:
    clock = Clock()
    auth = make(clock)
    s = auth.sign_in("g01", "1357", None, "a")
    other = auth.sign_in("g01", "1357", None, "a")
    assert auth.csrf_ok(s, s.csrf) and not auth.csrf_ok(s, other.csrf)
    assert not auth.csrf_ok(s, None) and not auth.csrf_ok(s, "")
    clock.t += 599
    assert auth.session(s.sid) is s  # touched: idle time starts again
    clock.t += 599
    assert auth.session(s.sid) is s
    clock.t += 601
    assert auth.session(s.sid) is None and auth.session(other.sid) is None  # idle too long
    fresh = auth.sign_in("g01", "1357", None, "a")
    for _ in range(7):  # never idle, but 3,500 s old ...
        clock.t += 500
        assert auth.session(fresh.sid) is fresh
    clock.t += 500  # ... and now past session_max_s
    assert auth.session(fresh.sid) is None  # older than session_max_s
    assert auth.session("forged-cookie") is None and auth.session(None) is None
    pin_ok = auth.sign_in("g01", "1357", None, "a")
    assert auth.check_pin(pin_ok, "1357", "a") and not auth.check_pin(pin_ok, "0000", "a")
