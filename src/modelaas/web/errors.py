"""One place that turns exceptions into JSON error answers."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from modelaas.errors import ModelaasError

log = logging.getLogger("modelaas.web")


async def modelaas_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ModelaasError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("Unexpected error answering %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"message": "Internal server error; the server log has the details."}, status_code=500)


HANDLERS = {ModelaasError: modelaas_error, HTTPException: http_error, Exception: unexpected_error}
