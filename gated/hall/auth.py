"""Sign-in for the hall's pages: salted scrypt secrets, limited failures, expiring sessions and
CSRF tokens. All in the web process's memory: a restart signs everybody out (the display needs
no sign-in, so it carries on), which is the safe way round.

A session is a random id in an HttpOnly, SameSite=Strict cookie; each has its own CSRF token,
which every state-changing request must echo in ``X-CSRF-Token``. A user with
``signin_max_failures`` wrong PINs within ``signin_lockout_s`` (a client address with three
times as many, whatever the names tried) is locked out for ``signin_lockout_s``
(logged ``hall_signin_failed`` / ``hall_signin_locked``); while locked, even the right PIN is
refused, so guessing costs the lockout time per few tries.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from gated.config import HallRole, HallUser, HallWebConfig

log = structlog.get_logger(__name__)

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB while hashing; ~0.1 s on a Pi 4
MIN_PIN = 4
MAX_PIN = 64
MAX_SESSIONS = 500
ADDRESS_FACTOR = 3  # an address is locked after 3x the failures of one user (many names tried)


def hash_secret(pin: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` of ``pin``: what ``[hall.users.<id>] secret`` holds."""
    if not MIN_PIN <= len(pin) <= MAX_PIN:
        raise ValueError(f"a PIN or password has {MIN_PIN}-{MAX_PIN} characters")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_secret(pin: str, secret: str) -> bool:
    try:
        _, n, r, p, salt, digest = secret.split("$")
        got = hashlib.scrypt(pin.encode()[:MAX_PIN * 4], salt=bytes.fromhex(salt), n=int(n),
                             r=int(r), p=int(p), maxmem=256 * 1024 * 1024)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got.hex(), digest)


@dataclass
class Session:
    sid: str
    user: str
    role: HallRole
    counter: str | None
    csrf: str
    created: float
    seen: float

    def actor(self) -> dict[str, str]:
        """Who did it, for the daemon's audit event."""
        out = {"source": "hall", "role": str(self.role), "clerk": self.user}
        if self.counter:
            out["counter"] = self.counter
        return out


@dataclass
class _Failures:
    times: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class SignInRefused(Exception):
    def __init__(self, reason: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class Auth:
    """Users from ``[hall.users]``, the sessions and the lockouts; one per web process."""

    def __init__(self, cfg: HallWebConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.users: dict[str, HallUser] = dict(cfg.users)
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, _Failures] = {}

    # ------------------------------------------------------------------ sign-in
    def sign_in(self, user_id: str, pin: str, counter: str | None, remote: str) -> Session:
        """A new session, or ``SignInRefused`` (unknown user and wrong PIN look the same)."""
        now = self._clock()
        for key in (f"user:{user_id}", f"addr:{remote}"):
            f = self._failures.get(key)
            if f is not None and f.locked_until > now:
                log.warning("hall_signin_failed", user=user_id, remote=remote, reason="locked")
                raise SignInRefused("locked_out", f"too many wrong PINs; try again in "
                                    f"{int(f.locked_until - now) + 1} s", 429)
        user = self.users.get(user_id)
        if user is None or not verify_secret(pin, user.secret):
            self._failed(user_id, remote, now)
            raise SignInRefused("wrong_pin", "unknown user or wrong PIN")
        if user.role is HallRole.COUNTER:
            if not counter:
                raise SignInRefused("counter_required", "choose the counter you sit at", 400)
            if user.counters and counter not in user.counters:
                log.warning("hall_signin_failed", user=user_id, remote=remote,
                            reason="counter_not_allowed", counter=counter)
                raise SignInRefused("counter_not_allowed",
                                    f"{user_id} may not sign in to counter {counter}")
        for key in (f"user:{user_id}", f"addr:{remote}"):
            self._failures.pop(key, None)
        self._expire(now)
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.seen)
            self._sessions.pop(oldest.sid)
        session = Session(secrets.token_urlsafe(32), user_id, user.role,
                          counter if user.role in (HallRole.COUNTER, HallRole.ADMIN) else None,
                          secrets.token_urlsafe(24), now, now)
        self._sessions[session.sid] = session
        log.info("hall_signin", user=user_id, role=str(user.role), counter=session.counter,
                 remote=remote)
        return session

    def check_pin(self, session: Session, pin: str, remote: str) -> bool:
        """The guard's PIN asked again before a gate opens or a zone mode changes; a wrong one
        counts towards the lockout like a failed sign-in."""
        user = self.users.get(session.user)
        now = self._clock()
        f = self._failures.get(f"user:{session.user}")
        if f is not None and f.locked_until > now:
            return False
        if user is not None and verify_secret(pin, user.secret):
            return True
        self._failed(session.user, remote, now)
        return False

    def _failed(self, user_id: str, remote: str, now: float) -> None:
        window = self.cfg.signin_lockout_s
        for key in (f"user:{user_id}", f"addr:{remote}"):
            f = self._failures.setdefault(key, _Failures())
            f.times = [t for t in f.times if now - t < window] + [now]
            limit = self.cfg.signin_max_failures * (ADDRESS_FACTOR if key[0] == "a" else 1)
            if len(f.times) >= limit:
                f.locked_until = now + window
                f.times.clear()
                log.warning("hall_signin_locked", key=key.split(":")[0], user=user_id,
                            remote=remote, seconds=window)
        log.warning("hall_signin_failed", user=user_id[:32], remote=remote, reason="wrong_pin")
        if len(self._failures) > 10_000:  # a flood of made-up user names
            self._failures = {k: v for k, v in self._failures.items() if v.locked_until > now}

    # ------------------------------------------------------------------ sessions
    def session(self, sid: str | None) -> Session | None:
        """The live session of a cookie, touched; None when unknown, idle too long or too old."""
        if not sid:
            return None
        s = self._sessions.get(sid)
        if s is None:
            return None
        now = self._clock()
        if now - s.seen > self.cfg.session_idle_s or now - s.created > self.cfg.session_max_s:
            self._sessions.pop(sid, None)
            log.info("hall_session_expired", user=s.user, role=str(s.role))
            return None
        s.seen = now
        return s

    def sign_out(self, sid: str | None) -> None:
        s = self._sessions.pop(sid or "", None)
        if s is not None:
            log.info("hall_signout", user=s.user, role=str(s.role))

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(session.csrf, token or "")

    def _expire(self, now: float) -> None:
        for sid, s in list(self._sessions.items()):
            if now - s.seen > self.cfg.session_idle_s or now - s.created > self.cfg.session_max_s:
                del self._sessions[sid]
