"""Bad input on every endpoint of a real ``gated hall``: malformed or oversized bodies, unknown
fields, a forged session cookie, paths outside the assets, other sites, a flood. Each gets a
clear 4xx with a reason (never a traceback or a 500), with the security headers, and nothing of
it reaches the daemon as a command."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from tests.hall.conftest import Booth

pytestmark = pytest.mark.timeout(120)
JSON = {"content-type": "application/json"}


def raw(booth: Booth, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """One request with the path sent exactly as given (no client-side normalising)."""
    conn = http.client.HTTPConnection("127.0.0.1", booth.hall.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()
    try:
        parsed: Any = json.loads(data)
    except ValueError:
        parsed = data.decode(errors="replace")
    return r.status, hdrs, parsed


CASES: list[tuple[str, str, bytes | None, dict[str, str], int, str]] = [
    ("GET", "/static/..%2F..%2Fgated.toml", None, {}, 404, "not_found"),
    ("GET", "/static/%2e%2e/%2e%2e/etc/passwd", None, {}, 404, "not_found"),
    ("GET", "/static/../../etc/passwd", None, {}, 404, "not_found"),
    ("GET", "/voice/" + "0" * 32 + ".wav", None, {}, 404, "not_found"),
    ("GET", "/voice/..%2F..%2Fsite.key", None, {}, 404, "not_found"),
    ("GET", "/nowhere", None, {}, 404, "not_found"),
    ("GET", "/api/action", None, {}, 405, "method_not_allowed"),
    ("GET", "/api/stream?page=guard", None, {}, 401, "not_signed_in"),
    ("GET", "/api/stream?page=everything", None, {}, 400, "bad_page"),
    ("GET", "/api/stream?page=display&x=1", None, {}, 400, "bad_page"),
    ("POST", "/api/action", b"call_next", {"content-type": "text/plain"}, 415, "json_required"),
    ("POST", "/api/action", b'{"action": "call_next",', JSON, 400, "bad_json"),
    ("POST", "/api/action", b"\xff\xfe{}", JSON, 400, "bad_json"),
    ("POST", "/api/action", b'["call_next"]', JSON, 400, "bad_body"),
    ("POST", "/api/action", b"[" * 2000 + b"]" * 2000, JSON, 400, "bad_json"),
    ("POST", "/api/action", b'{"action": "call_next", "args": {"n": 1e999}}', JSON, 400,
     "bad_json"),
    ("POST", "/api/action", b'{"action": "call_next", "args": {}, "extra": 1}', JSON, 400,
     "bad_body"),
    ("POST", "/api/action", b'{"action": "format_disk"}', JSON, 404, "unknown_action"),
    ("POST", "/api/action", b'{"action": "call_next"}', JSON, 401, "not_signed_in"),
    ("POST", "/api/action", b'{"action": "call_next"}', {**JSON, "cookie": "gated_hall=forged"},
     401, "session_expired"),
    ("POST", "/api/action", b"{" + b'"a": "' + b"x" * 20_000 + b'"}', JSON, 413, "too_large"),
    ("POST", "/api/action", b"{}", {**JSON, "content-length": "99999999"}, 413, "too_large"),
    ("POST", "/api/signin", b'{"user": "g01", "pin": "1357", "role": "admin"}', JSON, 400,
     "unknown_field"),
    ("POST", "/api/signin", b'{"user": "g01"}', JSON, 400, "bad_signin"),
    ("POST", "/api/signin", b'{"user": "c07", "pin": "2468", "counter": "99"}', JSON, 400,
     "unknown_counter"),
    ("POST", "/api/signin", b'{"user": "g01", "pin": "1357"}',
     {**JSON, "origin": "http://evil.example"}, 403, "cross_site"),
    ("POST", "/api/signin", b'{"user": "g01", "pin": "1357"}',
     {**JSON, "sec-fetch-site": "cross-site"}, 403, "cross_site"),
    ("POST", "/api/rate-qr", b'{"ticket_id": "A001", "level": "superb"}', JSON, 400,
     "bad_level"),
    ("POST", "/api/rate-qr", b'{"ticket_id": "A001", "level": "basic", "name": "x"}', JSON, 400,
     "unknown_field"),
    ("POST", "/api/rate-qr", b'{"ticket_id": "' + b"A" * 41 + b'", "level": "basic"}', JSON,
     400, "bad_ticket"),
    ("POST", "/api/rate-qr", b'{"ticket_id": "A001", "level": "basic", "reason": "<script>"}',
     JSON, 400, "bad_reason"),
    ("POST", "/api/rate", b'{"ticket_id": "A001", "level": "basic"}', JSON, 401,
     "not_signed_in"),
]


def test_bad_input_gets_a_clear_4xx_and_never_reaches_the_daemon(booth: Booth) -> None:
    commands = booth.settled_commands()
    for method, path, body, headers, status, reason in CASES:
        got, hdrs, data = raw(booth, method, path, body, headers)
        assert (got, data.get("reason") if isinstance(data, dict) else data) == (
            status, reason), (method, path, body and body[:60])
        assert "content-security-policy" in hdrs and hdrs["x-content-type-options"] == "nosniff"
        assert "Traceback" not in json.dumps(data)
    assert booth.settled_commands() == commands
    assert "hall_request_failed" not in booth.hall.log_path.read_text(errors="replace")


def test_pages_carry_the_security_headers_and_no_inline_script(booth: Booth) -> None:
    for path in ("/", "/display", "/counter", "/rate", "/guard", "/r?t=X"):
        status, hdrs, text = raw(booth, "GET", path)
        assert status == 200 and "script-src 'self'" in hdrs["content-security-policy"]
        assert "frame-ancestors 'none'" in hdrs["content-security-policy"]
        assert "<script>" not in text and "onclick=" not in text
    status, hdrs, _ = raw(booth, "GET", "/static/display.js")
    assert status == 200 and hdrs["content-type"].startswith("text/javascript")
    status, hdrs, _ = raw(booth, "GET", "/static/chime.wav")
    assert status == 200 and hdrs["content-type"] == "audio/wav"


def test_a_flood_from_one_address_is_refused_with_429(booth: Booth) -> None:
    statuses = [raw(booth, "GET", "/api/info")[0] for _ in range(400)]
    assert 429 in statuses and 500 not in statuses
    assert statuses[0] == 200
