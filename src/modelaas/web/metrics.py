"""``GET <b>/metrics``: the Prometheus metrics of the server (all its processes), with ``--metrics``.

With ``--metrics-port`` they are served on that port only (:class:`MetricsPort`), and the
API port answers 404 there.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from modelaas.telemetry import metrics
from modelaas.web.state import state


async def show(request: Request) -> Response:
    recorder = metrics.current()
    if not isinstance(recorder, metrics.Metrics):
        return Response(status_code=404)
    recorder.sample(*state(request).runtime.occupancy())
    body = await asyncio.to_thread(recorder.exposition)  # reads every process's file in multiprocess mode
    return Response(body, media_type=metrics.CONTENT_TYPE)


async def sample_gate(request_state: object, every: float = 1.0) -> None:
    """Every ``every`` seconds: flush what this process tallied, sample its in-flight and waiting gauges."""
    runtime = request_state.runtime  # type: ignore[attr-defined]
    recorder = metrics.current()
    try:
        while True:
            recorder.sample(*runtime.occupancy())
            recorder.flush()
            await asyncio.sleep(every)
    finally:
        recorder.flush()  # at shutdown: nothing tallied is lost


class MetricsPort:
    """With ``--metrics-port``: only ``/metrics`` on that port, and never ``/metrics`` on the others."""

    def __init__(self, app: ASGIApp, *, port: int, path: str) -> None:
        self.app = app
        self.port = port
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            server = scope.get("server")
            on_metrics_port = server is not None and server[1] == self.port
            if on_metrics_port != (scope["path"] == self.path):
                await Response(status_code=404)(scope, receive, send)
                return
        await self.app(scope, receive, send)
