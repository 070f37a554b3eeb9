"""``GET <b>/healthz`` (the process answers) and ``GET <b>/readyz`` (models warmed)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from modelaas.web.render import JSON
from modelaas.web.state import state


async def healthz(request: Request) -> Response:
    return JSON({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime = state(request).runtime
    if runtime.ready:
        return JSON({"status": "ready", "models": runtime.names})
    return JSON(
        {"status": "starting", "message": "Models are still warming up."}, status_code=503, headers={"Retry-After": "1"}
    )
