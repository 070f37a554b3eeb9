"""One server's HTTP plumbing, shared by :class:`~modelaas.client.Client` and its job handles:
requests, streamed answers, and error answers turned into :mod:`modelaas.errors` exceptions."""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from modelaas.errors import (
    BadRequest,
    ClientError,
    Conflict,
    JobNotFound,
    ModelaasError,
    ModelError,
    ModelNotFound,
    NotAcceptable,
    NotFound,
    NotImplementedByModel,
    Overloaded,
    PayloadTooLarge,
    PredictTimeout,
    ServerUnreachable,
    TooManyJobs,
    ValidationError,
)


class Transport:
    """An httpx client bound to one server (``url``, its token, ``timeout``)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        headers = {"User-Agent": "modelaas-client"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url + "/", headers=headers, timeout=timeout, transport=transport, follow_redirects=False
        )

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        model: str | None = None,
        job: str | None = None,
        missing: type[NotFound] = NotFound,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request and answer its (read) response; raise the server's error."""
        with self.stream(method, path, model=model, job=job, missing=missing, **kwargs) as response:
            try:
                response.read()
            except httpx.TransportError as exc:
                raise self.unreachable(exc) from exc
            return response

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        model: str | None = None,
        job: str | None = None,
        missing: type[NotFound] = NotFound,
        **kwargs: Any,
    ) -> Iterator[httpx.Response]:
        """Send a request and yield its response before its body is read (downloads, SSE)."""
        try:
            request = self._http.build_request(method, path, **kwargs)
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from exc
        try:
            if not response.is_success:
                try:
                    response.read()
                except httpx.TransportError as exc:
                    raise self.unreachable(exc) from exc
                raise error_from_response(response, model=model, job=job, missing=missing)
            yield response
        finally:
            response.close()

    def unreachable(self, exc: httpx.TransportError) -> ServerUnreachable:
        if isinstance(exc, httpx.TimeoutException):
            return ServerUnreachable(f"No answer from {self.url} within {self.timeout} s: {exc}")
        return ServerUnreachable(f"Cannot reach {self.url}: {exc or type(exc).__name__}")


# -------------------------------------------------------------------- errors
_NO_MODEL = re.compile(r"^No model named .*? Installed models: (.*)\.$", re.S)
_NO_JOB = "has no training job"
REQUEST_ID_HEADER = "X-Request-ID"


def error_from_response(
    response: httpx.Response,
    *,
    model: str | None = None,
    job: str | None = None,
    missing: type[NotFound] = NotFound,
) -> ModelaasError:
    """The :mod:`modelaas.errors` exception an error answer stands for, carrying the
    request's id when the server gave one (its ``request_id``, or the ``X-Request-ID`` header).

    ``model``/``job`` name what the route was about; ``missing`` is the class a 404 that
    does not say what is missing stands for (``ModelNotFound`` for a model's own entry).
    """
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        pass
    error = _error(response, body, model=model, job=job, missing=missing)
    rid = body.get("request_id") if isinstance(body, Mapping) else None
    rid = rid if isinstance(rid, str) and rid else response.headers.get(REQUEST_ID_HEADER)
    return error.with_request_id(rid) if rid else error


def _error(
    response: httpx.Response, body: Any, *, model: str | None, job: str | None, missing: type[NotFound]
) -> ModelaasError:
    status = response.status_code
    message = _message(response, body)
    error: ModelaasError
    if status == 422 and isinstance(body, Mapping) and body:
        return ValidationError(body)
    if status == 404:
        found = _NO_MODEL.match(message)
        if found or (missing is ModelNotFound and model is not None):
            known = found.group(1) if found else "none"
            error = ModelNotFound(model or "", [] if known == "none" else known.split(", "))
        elif model is not None and job is not None and _NO_JOB in message:
            error = JobNotFound(model, job)
        else:
            error = NotFound(message)
        return _with_message(error, message)
    simple: dict[int, type[ModelaasError]] = {
        400: BadRequest,
        406: NotAcceptable,
        409: Conflict,
        413: PayloadTooLarge,
        501: NotImplementedByModel,
        504: PredictTimeout,
    }
    if status == 422:
        return ValidationError({"message": [message]})
    if status in simple:
        return simple[status](message)
    if status == 429:
        return TooManyJobs(message, **_retry_after(response))
    if status == 503:
        return Overloaded(message, **_retry_after(response))
    if 400 <= status < 500:
        return ClientError(message, status=status)
    if status >= 500:
        return ModelError(message, status=status)
    return ModelaasError(f"Unexpected answer {status} {response.reason_phrase}: {message}", status=status)


def _message(response: httpx.Response, body: Any) -> str:
    if isinstance(body, Mapping):
        for key in ("message", "error"):  # DEEPaaS-style routes; Open Inference Protocol paths
            if isinstance(body.get(key), str):
                return str(body[key])
    text = response.text.strip()
    return text[:1000] if text else f"{response.status_code} {response.reason_phrase}"


def _with_message(error: ModelaasError, message: str) -> ModelaasError:
    """Keep the server's own words (the client does not know, e.g., which models it serves)."""
    error.message = message
    error.args = (message,)
    return error


def _retry_after(response: httpx.Response) -> dict[str, int]:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return {}
    try:
        return {"retry_after": max(0, math.ceil(float(value)))}
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return {}
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return {"retry_after": max(0, math.ceil((when - dt.datetime.now(dt.timezone.utc)).total_seconds()))}
