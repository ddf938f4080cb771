"""HTTP plumbing of the hall's web service, below the routes: security headers on every
response, a per-address request budget, bounded JSON bodies, and errors as JSON with a reason.

Pure ASGI middleware (no per-request objects beyond Starlette's own), so a flood costs as
little as possible before it is refused with 429.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gated.wire import PayloadError, loads

log = structlog.get_logger(__name__)

MAX_BODY = 8 * 1024
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]


class HallError(Exception):
    """A request refused with ``status`` and a reason slug; becomes a JSON answer."""

    def __init__(self, status: int, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.status = status
        self.reason = reason


def error(status: int, reason: str, message: str = "") -> JSONResponse:
    return JSONResponse({"ok": False, "reason": reason, "message": message or reason},
                        status_code=status, headers={"cache-control": "no-store"})


class Guard:
    """Security headers, a token bucket per client address, and a last line of defence: an
    exception nobody handled is logged and answered 500 without a traceback."""

    def __init__(self, app: ASGIApp, *, tls: bool, rate: float = 30.0,
                 burst: float = 120.0) -> None:
        self.app = app
        self.headers = HEADERS + ([(b"strict-transport-security", b"max-age=31536000")]
                                  if tls else [])
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # addr -> (tokens, at)
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        addr = client[0] if client else "?"
        if not self._take(addr):
            self.refused += 1
            if self.refused % 100 == 1:
                log.warning("hall_flood", remote=addr, refused=self.refused)
            await self._send_headers(error(429, "too_many_requests",
                                           "slow down"), scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *self.headers]
            await send(message)
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as e:
            log.exception("hall_request_failed", path=scope.get("path"), error=repr(e))
            if not started:
                await error(500, "internal", "internal error (logged)")(scope, receive,
                                                                        send_with_headers)

    async def _send_headers(self, response: JSONResponse, scope: Scope, receive: Receive,
                            send: Send) -> None:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)
        await response(scope, receive, wrapped)

    def _take(self, addr: str) -> bool:
        now = time.monotonic()
        tokens, at = self._buckets.get(addr, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1:
            self._buckets[addr] = (tokens, now)
            return False
        self._buckets[addr] = (tokens - 1, now)
        if len(self._buckets) > 5000:
            self._buckets = {a: v for a, v in self._buckets.items() if now - v[1] < 60}
        return True


async def json_body(request: Request) -> Any:
    """The request's JSON body: 415 unless it says JSON, 413 past ``MAX_BODY``, 400 if it is not
    a JSON object. Cross-site forms cannot send ``application/json`` without a preflight, which
    this server never grants."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise HallError(415, "json_required", "send application/json")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise HallError(413, "too_large", f"bodies are at most {MAX_BODY} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise HallError(413, "too_large", f"bodies are at most {MAX_BODY} bytes")
    try:
        body = loads(bytes(raw))  # bounded: nesting depth, number ranges
    except PayloadError as e:
        raise HallError(400, "bad_json", f"the body is not acceptable JSON ({e.reason})") \
            from None
    if not isinstance(body, dict):
        raise HallError(400, "bad_body", "the body must be a JSON object")
    return body


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")
