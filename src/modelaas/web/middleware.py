"""ASGI middleware around the routes, outermost first.

1. :class:`RequestContext`: gives every request an id (the client's ``X-Request-ID`` when
   it is a sane token, else a new one) and sends it back on every answer; bounds the time
   a client may take to send its body (``body_timeout``, 408); turns an unexpected error
   into a generic 500 and logs its traceback with the request id.
2. CORS (Starlette's), only with ``cors_origins``.
3. :class:`AccessControl`: bearer tokens and scopes, only when tokens are configured; it
   records who sent a request (``scope["state"]["principal"]``, ``["sees_all"]`` for an
   admin token), which training jobs are filtered by.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from urllib.parse import urlsplit

import anyio
from starlette.datastructures import Headers, QueryParams
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelaas.errors import Forbidden, RequestTimeout, Unauthorized
from modelaas.settings import Settings
from modelaas.telemetry import context, tracing
from modelaas.tokens import ADMIN, ANY_TOKEN, PUBLIC, TokenTable, grants, principal
from modelaas.web.access import access_of, requirement
from modelaas.web.accesslog import RequestRecorder
from modelaas.web.errors import error_response, internal_error_response, out_of_space, out_of_space_response
from modelaas.web.metrics import MetricsPort

log = logging.getLogger("modelaas.web")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/=-]{0,127}\Z", re.ASCII)
current_request_id = context.request_id


def build_middleware(
    settings: Settings, routes: Sequence[BaseRoute], tokens: TokenTable, recorder: RequestRecorder | None = None
) -> list[Middleware]:
    stack = [Middleware(RequestContext, body_timeout=settings.body_timeout, recorder=recorder)]
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=[o.strip() for o in settings.cors_origins.split(",") if o.strip()],
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Accept", "Last-Event-ID", REQUEST_ID_HEADER],
                expose_headers=[
                    REQUEST_ID_HEADER,
                    "Retry-After",
                    "WWW-Authenticate",
                    "Content-Disposition",
                    "X-Next-Offset",
                    "X-Job-Status",
                    "X-Total-Count",
                    "Link",
                ],
            )
        )
    if settings.metrics and settings.metrics_port is not None:
        stack.append(Middleware(MetricsPort, port=settings.metrics_port, path=settings.base_path + "/metrics"))
    if tokens.enabled:
        stack.append(Middleware(AccessControl, tokens=tokens, routes=routes, base_path=settings.base_path))
    return stack


# ---------------------------------------------------------------- request context
class RequestContext:
    def __init__(self, app: ASGIApp, *, body_timeout: float, recorder: RequestRecorder | None = None) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.recorder = recorder if recorder is not None and recorder.active else None
        self.routes = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for key, value in scope["headers"]:  # raw: cheaper than Headers() on every request
            if key == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = given if given is not None and _SANE_ID.match(given) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = rid
        token = current_request_id.set(rid)
        id_header = (b"x-request-id", rid.encode("ascii"))
        started = False
        status = sent = 0
        recorder = self.recorder
        began = time.perf_counter() if recorder is not None else 0.0

        async def send_with_id(message: Message) -> None:
            nonlocal started, status, sent
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = message.get("headers", ())
                if 300 <= status < 400:
                    headers = _relative_locations(headers)
                message["headers"] = [*headers, id_header]
            elif recorder is not None:
                sent += len(message.get("body", b""))
            await send(message)

        try:
            if tracing.enabled():
                await self._traced(scope, _BodyDeadline(receive, self.body_timeout), send_with_id, lambda: status)
            else:
                await self.app(scope, _BodyDeadline(receive, self.body_timeout), send_with_id)
        except Exception as exc:
            request = Request(scope)
            if started:  # too late for an error answer: uvicorn closes the connection
                log.error("Error after the answer to %s %s had started", request.method, scope["path"], exc_info=exc)
                return
            if out_of_space(exc):
                log.error("Out of disk space answering %s %s: %s", request.method, scope["path"], exc)
                await out_of_space_response(scope)(scope, receive, send_with_id)
                return
            log.error("Unexpected error answering %s %s", request.method, scope["path"], exc_info=exc)
            await internal_error_response(scope)(scope, receive, send_with_id)
        finally:
            if recorder is not None:
                recorder(scope, status, sent, time.perf_counter() - began)
            current_request_id.reset(token)

    async def _traced(self, scope: Scope, receive: Receive, send: Send, status: Callable[[], int]) -> None:
        """The request as a server span (continuing the caller's ``traceparent``), named by its route."""
        method, path = scope["method"], scope["path"]
        attributes = {
            "http.request.method": method,
            "url.path": path,
            "modelaas.request_id": scope["state"]["request_id"],
        }
        with tracing.start_request_span(f"{method} {path}", scope["headers"], attributes) as span:
            scope["state"]["trace_id"] = format(span.get_span_context().trace_id, "032x")  # for the access line
            try:
                await self.app(scope, receive, send)
            finally:
                if self.routes is not None and scope.get("endpoint") is not None:
                    route = self.routes.route_of(scope)
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status())


def _relative_locations(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Redirect targets as paths: an absolute one (Starlette's slash redirects build it from
    the request's Host header) would send clients wherever that header said."""
    out = []
    for key, value in headers:
        if key.lower() == b"location":
            parts = urlsplit(value.decode("latin-1"))
            if parts.scheme or parts.netloc:
                path = "/" + parts.path.lstrip("/")
                value = (path + (f"?{parts.query}" if parts.query else "")).encode("latin-1")
        out.append((key, value))
    return out


class _BodyDeadline:
    """``receive`` with a deadline for the whole body, counted from the first read of it."""

    def __init__(self, receive: Receive, timeout: float) -> None:
        self.receive = receive
        self.timeout = timeout
        self.deadline: float | None = None
        self.done = False

    async def __call__(self) -> Message:
        if self.done:
            return await self.receive()
        if self.deadline is None:
            self.deadline = _now() + self.timeout
        try:
            async with _timeout_at(self.deadline):
                message = await self.receive()
        except TimeoutError:
            raise RequestTimeout(
                f"The request body did not arrive within {self.timeout:g} s; "
                "send it faster, or ask for a larger --body-timeout."
            ) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.done = True
        return message


if sys.version_info >= (3, 11):

    def _now() -> float:
        return asyncio.get_running_loop().time()

    _timeout_at = asyncio.timeout_at  # a fraction of the cost of an anyio cancel scope
else:  # pragma: no cover - Python 3.10
    _now = anyio.current_time

    @contextlib.asynccontextmanager
    async def _timeout_at(deadline: float) -> AsyncIterator[None]:
        with anyio.fail_after(max(deadline - anyio.current_time(), 0.0)):
            yield


class RequestIdLogFilter(logging.Filter):
    """Puts the id of the request being served on records (``record.request_id``); the text
    log format shows it as ``[request <id>]`` before the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = current_request_id.get()
        if rid is not None and not getattr(record, "request_id", None):
            record.request_id = rid
        return True


def install_log_filter(names: Sequence[str] = ("modelaas.web", "modelaas.runtime", "modelaas.jobs")) -> None:
    """Tag what these loggers log during a request with its id (once per logger)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RequestIdLogFilter) for f in logger.filters):
            logger.addFilter(RequestIdLogFilter())


# ---------------------------------------------------------------- access control
class AccessControl:
    """Checks the bearer token of requests to protected routes; 401 or 403 otherwise.

    The route is found the way the router finds it, and what it needs is what it declares
    (web/routes.py), so what is checked is what will run; a path that matches no route is
    judged by the route serving its longest leading part.
    """

    def __init__(self, app: ASGIApp, *, tokens: TokenTable, routes: Sequence[BaseRoute], base_path: str) -> None:
        self.app = app
        self.tokens = tokens
        self.all_routes = list(routes)
        self.routes = [(r, *access_of(r)) for r in routes if isinstance(r, Route)]

    def _classify(self, scope: Scope) -> tuple[str, bool]:
        partial: tuple[Route, str, bool] | None = None
        for route, need, events in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                partial = (route, need, events)
                break
            if match is Match.PARTIAL and partial is None:
                partial = (route, need, events)
        if partial is None:
            return requirement(scope["path"], self.all_routes)
        if getattr(partial[0], "oip", False):  # its refusals are Open Inference Protocol errors
            scope.setdefault("state", {})["oip"] = True
        return partial[1], partial[2]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        need, events = self._classify(scope)
        if need != PUBLIC:
            refusal = self._refusal(scope, need, query_token=events)
            if refusal is not None:
                request = Request(scope, receive)
                await error_response(request, refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, need: str, *, query_token: bool) -> Unauthorized | Forbidden | None:
        """Why the request may not go on (None: it may; then who sent it is in its state)."""
        token = _bearer(scope)
        if token is None and query_token:  # EventSource cannot send headers
            token = QueryParams(scope.get("query_string", b"").decode("latin-1")).get("access_token")
        if not token:
            return Unauthorized("This route needs an access token: send the header 'Authorization: Bearer <token>'.")
        scopes = self.tokens.scopes_for(token)
        if scopes is None:
            return Unauthorized("The access token is not valid.")
        if need != ANY_TOKEN and not grants(scopes, need):
            return Forbidden(f"This token may not use {need} routes: that needs the {need!r} scope (or 'admin').")
        state = scope.setdefault("state", {})
        state["principal"] = principal(token)  # the jobs it submits are its own
        state["sees_all"] = ADMIN in scopes  # ... and only an admin token sees the others' too
        state["scopes"] = scopes  # for routes whose methods need different scopes (checked by the route)
        return None


def _bearer(scope: Scope) -> str | None:
    value = Headers(scope=scope).get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()
