"""One place that turns exceptions into JSON error answers.

Every error body is ``{"message": ..., "request_id": ...}``, except a 422, whose body stays
the bare field -> messages map that DEEPaaS clients expect (its request id is in the
``X-Request-ID`` header, as on every answer). Messages that come from model code (and
every 5xx message) are scrubbed before they leave: no stack traces, absolute paths become
their base names, and values of environment variables and access tokens become
``<redacted>``. The full story goes to the server log, under the request id.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_plus

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from modelaas.errors import REDACTED, ModelaasError, ModelError, OutputInvalid, ValidationError

log = logging.getLogger("modelaas.web")

WARNED = (413, 503, 504)
"""Statuses logged at WARNING (an operator acts on them: limits, capacity, slow models)."""
GENERIC_500 = "Internal server error; the server log has the details."
MIN_SECRET_LENGTH = 6
"""Environment values shorter than this are not redacted (``true``, ``1``, ``info``...)."""

_TRACEBACK = "Traceback (most recent call last)"
# A URL (kept, unless it is a file: URL), a POSIX absolute path, or a Windows one.
_LOCATION = re.compile(
    r"(?P<url>\b(?!file:)[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*)"
    r"|(?P<posix>(?<![\w.~/\\-])(?:file://)?(?:/[^\s/'\"<>,;:()\[\]{}]+)+/?)"
    r"|(?P<windows>\b[A-Za-z]:\\[^\s'\"<>,;()\[\]{}]*)"
)


def request_id(scope: Scope) -> str | None:
    """The id given to this request by :class:`~modelaas.web.middleware.RequestContext`."""
    rid = scope.get("state", {}).get("request_id")
    return rid if isinstance(rid, str) else None


def scrub(message: str, *, public: Iterable[str] = (), extra: Iterable[str] = (), sent: Iterable[str] = ()) -> str:
    """``message`` without stack traces, absolute paths (-> base names) and secrets.

    Secrets are the values of environment variables of at least ``MIN_SECRET_LENGTH``
    characters, and ``extra``; strings in ``public`` (model names) are never redacted, nor
    environment values found in what the client ``sent``: a message repeating the client's
    own text unchanged reveals nothing, while redacting it would tell the client that its
    text is a value of the server's environment.
    """
    cut = message.find(_TRACEBACK)
    if cut >= 0:
        message = message[:cut].rstrip() + " (traceback in the server log)"
    message = _LOCATION.sub(_base_name, message)
    keep = set(public)
    given = [s for s in sent if len(s) >= MIN_SECRET_LENGTH]
    environment = {v for v in os.environ.values() if not any(v in s for s in given)}
    secrets = {v for v in (*environment, *extra) if len(v) >= MIN_SECRET_LENGTH and v not in keep}
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in message:
            message = message.replace(secret, REDACTED)
    return message


def _base_name(match: re.Match[str]) -> str:
    if match.group("url") is not None:
        return match.group()
    path = match.group().rstrip("/\\")
    if path.startswith("file://"):
        path = path[len("file://") :]
    name = re.split(r"[/\\]", path)[-1]
    return name or match.group()


def error_response(request: Request, exc: ModelaasError) -> Response:
    """The JSON answer for ``exc`` (scrubbed, with the request id; 422 bodies as they are)."""
    body = exc.body()
    headers = dict(exc.headers())
    if not isinstance(exc, ValidationError):
        message = body.get("message")
        if isinstance(message, str) and (exc.status >= 500 or isinstance(exc, ModelError)):
            body["message"] = _scrub_for(request, message)
        rid = request_id(request.scope)
        if rid is not None:
            body["request_id"] = rid
    if exc.status in (408, 413):  # the rest of the body was not read: the connection cannot be reused
        headers.setdefault("Connection", "close")
    if exc.status in WARNED or (exc.status == 500 and isinstance(exc, OutputInvalid)):
        log.warning("%s %s answered %d: %s", request.method, request.url.path, exc.status, body.get("message", ""))
    if is_oip(request.scope):
        rid = body.get("request_id")
        body = {"error": public_message(request, exc), **({"request_id": rid} if rid is not None else {})}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def is_oip(scope: Scope) -> bool:
    """Whether the request is to an Open Inference Protocol route (the one matched, or the one
    whose path it has, as for a 405), whose errors are ``{"error": ...}``."""
    return bool(scope.get("state", {}).get("oip") or getattr(scope.get("route"), "oip", False))


def _shaped(scope: Scope, body: dict[str, Any]) -> dict[str, Any]:
    """``{"message": m, ...}`` as ``{"error": m, ...}`` on Open Inference Protocol routes."""
    if is_oip(scope):
        return {"error": body.pop("message"), **body}
    return body


def public_message(request: Request, exc: ModelaasError) -> str:
    """The message of ``exc`` as a client may see it (scrubbed where it comes from model code or is a 5xx)."""
    if exc.status >= 500 or isinstance(exc, ModelError):
        return _scrub_for(request, exc.message)
    return exc.message


def _scrub_for(request: Request, message: str) -> str:
    st = getattr(request.app.state, "modelaas", None) if "app" in request.scope else None
    public = st.runtime.names if st is not None else ()
    tokens = st.tokens if st is not None else None
    message = scrub(message, public=public, sent=client_texts(request.scope))
    return tokens.redact(message) if tokens is not None else message


def client_texts(scope: Scope) -> list[str]:
    """The text a client sent with this request: path, query, and the inputs an endpoint
    recorded as ``scope["state"]["client_input"]`` (a :class:`RequestBody`)."""
    texts = [scope.get("path", ""), unquote_plus(scope.get("query_string", b"").decode("latin-1"))]
    body = scope.get("state", {}).get("client_input")
    if body is not None:
        for name, value in body.fields:
            texts += (name, value)
        texts += (upload.original_filename for _, upload in body.files)
        _strings(body.json, texts)
    return texts


def _strings(value: object, out: list[str], depth: int = 0) -> None:
    if depth > 64:
        return
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            out.append(str(key))
            _strings(item, out, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _strings(item, out, depth + 1)
    elif value is not None:
        out.append(str(value))


async def modelaas_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ModelaasError)
    return error_response(request, exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    body = {"message": str(exc.detail)}
    rid = request_id(request.scope)
    if rid is not None:
        body["request_id"] = rid
    return JSONResponse(_shaped(request.scope, body), status_code=exc.status_code, headers=exc.headers)


OUT_OF_SPACE = "The server is out of disk space; retry later."


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` says a disk is full (the spool, the data directory, the job store)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    orig = getattr(exc, "orig", None)
    if orig is not None and orig is not exc:
        if getattr(orig, "sqlstate", None) == "53100":  # PostgreSQL: disk_full
            return True
        text = str(orig).lower()
        return "disk is full" in text or "no space left on device" in text
    return False


def out_of_space_response(scope: Scope) -> Response:
    """507: a full disk is the server's state, not a failure of the request (retry later)."""
    body = {"message": OUT_OF_SPACE}
    rid = request_id(scope)
    if rid is not None:
        body["request_id"] = rid
    return JSONResponse(_shaped(scope, body), status_code=507, headers={"Retry-After": "60"})


def internal_error_response(scope: Scope) -> Response:
    """The answer to an unexpected error: a generic message and the request id, nothing else."""
    body = {"message": GENERIC_500}
    rid = request_id(scope)
    if rid is not None:
        body["request_id"] = rid
    return JSONResponse(_shaped(scope, body), status_code=500)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    rid = request_id(request.scope)
    log.error("Unexpected error answering %s %s (request %s)", request.method, request.url.path, rid, exc_info=exc)
    return internal_error_response(request.scope)


HANDLERS = {ModelaasError: modelaas_error, HTTPException: http_error, Exception: unexpected_error}
