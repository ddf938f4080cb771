"""The hall's web application: pages, the live stream, sign-in and actions.

Roles are checked here, on the server, for every page and every action (``actions``); the
daemon trusts the local socket and records who did it (the actor). Every request that changes
something must be JSON, same-origin, and (when signed in) carry the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from gated.config import HallRole, HallView
from gated.control import ControlError, call
from gated.hall.actions import BadAction, command_for, rating_args
from gated.hall.auth import Auth, Session, SignInRefused
from gated.hall.feed import Client, Feed
from gated.hall.http import Guard, HallError, error, json_body, same_origin
from gated.hall.pages import load_static, shell
from gated.hall.views import Views
from gated.hall.voice import Voice, phrase

log = structlog.get_logger(__name__)

COOKIE = "gated_hall"
KEEPALIVE_S = 15.0
COMMAND_TIMEOUT_S = 8.0
#: page -> roles that may open it (display and the ticket QR page need no sign-in)
PAGE_ROLES: dict[str, tuple[HallRole, ...]] = {
    "counter": (HallRole.COUNTER, HallRole.ADMIN), "pad": (HallRole.COUNTER, HallRole.ADMIN),
    "guard": (HallRole.GUARD, HallRole.ADMIN)}
STREAM_KINDS = ("display", "counter", "pad", "guard")


class Hall:
    """Everything one web process holds; ``app`` is its ASGI application."""

    def __init__(self, view: HallView, *, voice: Voice, feed: Feed | None = None,
                 auth: Auth | None = None) -> None:
        self.cfg = view
        self.tls = bool(view.hall.tls_cert_file)
        self.auth = auth or Auth(view.hall)
        self.feed = feed or Feed(view.state_dir)
        self.voice = voice
        self.views = Views(view)
        self.static = load_static()
        self.feed.on_change = self._schedule_views
        self.feed.on_event = self._on_event
        self._views_due = False
        self._tasks: list[asyncio.Task[Any]] = []
        routes = [
            Route("/", self.index), Route("/display", self.page("display")),
            Route("/counter", self.page("counter")), Route("/rate", self.page("pad")),
            Route("/guard", self.page("guard")), Route("/r", self.page("qr")),
            Route("/static/{name}", self.asset), Route("/voice/{name}", self.audio),
            Route("/api/stream", self.stream), Route("/api/view", self.view_now),
            Route("/api/signin", self.signin, methods=["POST"]),
            Route("/api/signout", self.signout, methods=["POST"]),
            Route("/api/action", self.action, methods=["POST"]),
            Route("/api/rate", self.rate, methods=["POST"]),
            Route("/api/rate-qr", self.rate_qr, methods=["POST"]),
            Route("/api/info", self.info), Route("/healthz", self.health),
            Route("/favicon.ico", self.no_icon)]
        app = Starlette(routes=routes, lifespan=self._lifespan, exception_handlers={
            HTTPException: self._http_error, HallError: self._hall_error,
            BadAction: self._hall_error, SignInRefused: self._hall_error})
        self.app = Guard(app, tls=self.tls)

    # ------------------------------------------------------------------ lifecycle
    def _lifespan(self, app: Starlette) -> Any:
        hall = self

        class _Span:
            async def __aenter__(self) -> None:
                hall.feed.start(asyncio.get_running_loop())
                task = hall.voice.start_box()
                if task is not None:
                    hall._tasks.append(task)
                log.info("hall_started", listen=hall.cfg.hall.listen, tls=hall.tls)

            async def __aexit__(self, *exc: object) -> None:
                hall.feed.stop()
                for t in hall._tasks:
                    t.cancel()
                log.info("hall_stopped")
        return _Span()

    # ------------------------------------------------------------------ errors
    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        reasons = {404: "not_found", 405: "method_not_allowed"}
        return error(exc.status_code, reasons.get(exc.status_code, "bad_request"),
                     str(exc.detail))

    async def _hall_error(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status", 400)
        return error(status, getattr(exc, "reason", "bad_request"), str(exc))

    # ------------------------------------------------------------------ sessions
    def session(self, request: Request) -> Session | None:
        return self.auth.session(request.cookies.get(COOKIE))

    def _checked(self, request: Request) -> Session | None:
        """The session of a state-changing request, CSRF-checked; None when not signed in."""
        if not same_origin(request):
            raise HallError(403, "cross_site", "requests from other sites are refused")
        session = self.session(request)
        if session is not None and not self.auth.csrf_ok(session,
                                                         request.headers.get("x-csrf-token")):
            raise HallError(403, "csrf", "missing or wrong CSRF token; reload the page")
        if session is None and request.cookies.get(COOKIE):
            raise HallError(401, "session_expired", "signed out (expired); sign in again")
        return session

    # ------------------------------------------------------------------ pages
    def page(self, kind: str) -> Any:
        async def handler(request: Request) -> Response:
            s = self.session(request)
            roles = PAGE_ROLES.get(kind)
            ok = roles is None or (s is not None and s.role in roles)
            body = shell(kind, title=self.cfg.title, csrf=s.csrf if s else "",
                         counter=(s.counter or "") if s and ok else "",
                         user=s.user if s and ok else "", role=str(s.role) if s and ok else "",
                         signin="" if ok else str(roles[0]) if roles else "")
            return HTMLResponse(body, headers={"cache-control": "no-store"})
        return handler

    async def index(self, request: Request) -> Response:
        return HTMLResponse(shell("index", title=self.cfg.title),
                            headers={"cache-control": "no-store"})

    async def asset(self, request: Request) -> Response:
        asset = self.static.get(request.path_params["name"])
        if asset is None:
            raise HallError(404, "not_found", "no such asset")
        return Response(asset.body, media_type=asset.content_type,
                        headers={"cache-control": "max-age=300"})

    async def audio(self, request: Request) -> Response:
        name = request.path_params["name"]
        path = await self.voice.render(name.removesuffix(".wav")) \
            if name.endswith(".wav") else None
        if path is None:
            raise HallError(404, "not_found", "no such announcement")
        return FileResponse(path, media_type="audio/wav",
                            headers={"cache-control": "max-age=86400"})

    async def info(self, request: Request) -> Response:
        """Counters for the sign-in form, the rating scale and tags for the QR page (public:
        nothing personal)."""
        pad = self.views.pad(self.feed)
        return JSONResponse({"counters": [{"id": c, "name": v["name"]} for c, v in
                                          self.views.counters(self.feed).items()],
                             "levels": pad["levels"], "reasons": pad["reasons"]})

    async def no_icon(self, request: Request) -> Response:
        return Response(status_code=204)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "daemon_ok": self.feed.daemon_ok,
                             "pages": len(self.feed.clients)})

    # ------------------------------------------------------------------ live stream
    def _kind(self, request: Request) -> tuple[str, Session | None]:
        kind = request.query_params.get("page", "")
        if kind not in STREAM_KINDS or set(request.query_params) - {"page"}:
            raise HallError(400, "bad_page", f"page must be one of {list(STREAM_KINDS)}")
        s = self.session(request)
        roles = PAGE_ROLES.get(kind)
        if roles is not None and (s is None or s.role not in roles):
            raise HallError(401 if s is None else 403, "not_signed_in" if s is None
                            else "forbidden", f"the {kind} page needs a sign-in")
        return kind, s

    def view_of(self, kind: str) -> dict[str, Any]:
        views = {"display": self.views.display, "counter": self.views.counter,
                 "pad": self.views.pad, "guard": self.views.guard}
        return views[kind](self.feed)

    async def view_now(self, request: Request) -> Response:
        kind, _ = self._kind(request)
        return JSONResponse(self.view_of(kind), headers={"cache-control": "no-store"})

    async def stream(self, request: Request) -> Response:
        kind, s = self._kind(request)
        if len(self.feed.clients) >= self.cfg.hall.max_streams:
            raise HallError(429, "too_many_pages", "too many live pages connected")
        client = Client(kind, s.counter if s else None)
        self.feed.add(client)
        sid = s.sid if s else None

        async def events() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                yield _sse("view", self.view_of(kind))
                last = self.feed.served.get(client.counter or "")
                if kind == "pad" and last is not None and \
                        time.time() - last["at"] < self.cfg.rating.pad_timeout_s:
                    yield _sse("served", last)  # a pad opened just after "served" rates it
                while not client.dropped:
                    try:
                        name, data = await asyncio.wait_for(client.queue.get(), KEEPALIVE_S)
                    except TimeoutError:
                        if sid is not None and self.auth.session(sid) is None:
                            yield _sse("signout", {"reason": "session_expired"})
                            return
                        yield ": keepalive\n\n"
                        continue
                    yield _sse(name, data)
            finally:
                self.feed.remove(client)
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store",
                                          "x-accel-buffering": "no"})

    def _schedule_views(self) -> None:
        if not self._views_due:
            self._views_due = True
            asyncio.get_running_loop().call_soon(self._send_views)

    def _send_views(self) -> None:
        self._views_due = False
        kinds = {c.kind for c in self.feed.clients}
        for kind in kinds:
            self.feed.publish("view", self.view_of(kind), _of_kind(kind))

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("type") != "ticket.called":
            return
        data = event.get("data") or {}
        shown = self.views.call(data, str(event.get("id")), str(event.get("ts")))
        vc = self.cfg.hall.voice
        key = self.voice.key(phrase(vc, str(data.get("number", "")), shown["counter_name"]))
        shown["audio"] = f"/voice/{key}.wav" if vc.on_display else None
        shown["repeat"] = vc.repeat
        self.feed.publish("call", shown, lambda c: c.kind == "display")
        self.voice.announce_on_box(key)
        task = asyncio.get_running_loop().create_task(self.voice.render(key))  # ahead of play
        self._tasks = [t for t in self._tasks if not t.done()] + [task]

    # ------------------------------------------------------------------ sign-in
    async def signin(self, request: Request) -> Response:
        if not same_origin(request):
            raise HallError(403, "cross_site", "requests from other sites are refused")
        body = await json_body(request)
        unknown = set(body) - {"user", "pin", "counter"}
        if unknown:
            raise HallError(400, "unknown_field", f"unknown field(s): {sorted(unknown)}")
        user, pin, counter = body.get("user"), body.get("pin"), body.get("counter")
        if not isinstance(user, str) or not 0 < len(user) <= 32 or not isinstance(pin, str) \
                or not 0 < len(pin) <= 64:
            raise HallError(400, "bad_signin", "user and PIN are required")
        if counter is not None and (not isinstance(counter, str) or not 0 < len(counter) <= 16
                                    or counter not in self.known_counters()):
            raise HallError(400, "unknown_counter", "no such counter")
        remote = request.client.host if request.client else "?"
        session = await asyncio.to_thread(self.auth.sign_in, user, pin, counter, remote)
        resp = JSONResponse({"ok": True, "role": str(session.role), "counter": session.counter})
        resp.set_cookie(COOKIE, session.sid, httponly=True, samesite="strict", secure=self.tls,
                        path="/", max_age=int(self.cfg.hall.session_max_s))
        return resp

    def known_counters(self) -> list[str]:
        return list(self.views.counters(self.feed))

    async def signout(self, request: Request) -> Response:
        self._checked(request)
        self.auth.sign_out(request.cookies.get(COOKIE))
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # ------------------------------------------------------------------ actions
    async def action(self, request: Request) -> Response:
        session = self._checked(request)
        body = await json_body(request)
        action, args = command_for(session, body, self.cfg)
        assert session is not None
        if action.pin:
            remote = request.client.host if request.client else "?"
            pin = args.pop("pin")
            if not await asyncio.to_thread(self.auth.check_pin, session, pin, remote):
                log.warning("hall_pin_refused", user=session.user, action=action.command)
                raise HallError(403, "wrong_pin", "wrong PIN (or locked out); nothing done")
        return await self._send(action.command, args, session)

    async def rate(self, request: Request) -> Response:
        session = self._checked(request)
        if session is None:
            raise HallError(401, "not_signed_in", "the rating pad is signed in by its clerk")
        if session.role not in PAGE_ROLES["pad"]:
            raise HallError(403, "forbidden", "the rating pad is signed in by its clerk")
        args = rating_args(await json_body(request), self.cfg)
        served = self.feed.served.get(session.counter or "")
        if served is None or served.get("ticket_id") != args["ticket"] or \
                time.time() - served["at"] > self.cfg.rating.pad_timeout_s + 30:
            raise HallError(409, "not_this_ticket", "the pad rates the ticket just served here")
        return await self._send("rate", {**args, "source": "pad"}, session)

    async def rate_qr(self, request: Request) -> Response:
        if not same_origin(request):
            raise HallError(403, "cross_site", "requests from other sites are refused")
        args = rating_args(await json_body(request), self.cfg)
        return await self._send("rate", {**args, "source": "qr"}, None)

    async def _send(self, command: str, args: dict[str, Any],
                    session: Session | None) -> Response:
        actor = session.actor() if session else {"source": "hall", "role": "citizen"}
        try:
            reply = await asyncio.to_thread(call, self.cfg.state_dir, command, args,
                                            COMMAND_TIMEOUT_S, actor=actor)
        except ControlError as e:
            log.warning("hall_daemon_unreachable", command=command, error=str(e))
            return error(503, "daemon_unreachable", "the booth daemon does not answer")
        log.info("hall_action", command=command, ok=reply.get("ok"), **actor)
        if not reply.get("ok"):
            reason = str(reply.get("reason", "refused"))
            return JSONResponse({**reply, "ok": False}, status_code=503 if reason == "busy"
                                else 409)
        return JSONResponse(reply)


def _of_kind(kind: str) -> Callable[[Client], bool]:
    def match(c: Client) -> bool:
        return c.kind == kind
    return match


def _sse(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"
