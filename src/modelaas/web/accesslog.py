"""What is recorded of every answered request: an access log line and the request metrics.

The access log (logger ``modelaas.access``, INFO, ``--access-log``) says: the request id,
client address, method, path with the *names* of its query parameters only (their values
may hold user data), status (0: no answer was sent, the client left), duration, bytes of
the answer body and the model. Metrics label a request by its route template
(``/v2/models/{model}/predict/``, ``unmatched`` for a path no route serves) and by the
model only when it is one served (a client cannot make up label values).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from modelaas.telemetry.metrics import NoMetrics

log = logging.getLogger("modelaas.access")


class RequestRecorder:
    def __init__(
        self, routes: Sequence[BaseRoute], models: Collection[str], *, access_log: bool, metrics: NoMetrics
    ) -> None:
        self.models = frozenset(models)
        self.access_log = access_log
        self.metrics = metrics if metrics.active else None
        self.templates: dict[int, str] = {}
        for route in routes:
            if isinstance(route, Route):
                self.templates.setdefault(id(route.endpoint), route.path)

    @property
    def active(self) -> bool:
        """Whether there is anything to record (else the middleware skips the recorder)."""
        return self.metrics is not None or (self.access_log and log.isEnabledFor(logging.INFO))

    def __call__(self, scope: Scope, status: int, sent: int, seconds: float) -> None:
        raw = scope.get("path_params", {}).get("model")
        model = raw if raw in self.models else ""
        if self.metrics is not None:
            self.metrics.request(model, self.route_of(scope), scope["method"], status, seconds)
        if self.access_log and log.isEnabledFor(logging.INFO):
            self._log(scope, status, sent, seconds, raw if isinstance(raw, str) else None)

    def route_of(self, scope: Scope) -> str:
        """The template of the route that served the request (``unmatched`` when none did)."""
        endpoint = scope.get("endpoint")
        return self.templates.get(id(endpoint), "unmatched") if endpoint is not None else "unmatched"

    def _log(self, scope: Scope, status: int, sent: int, seconds: float, model: str | None) -> None:
        client = scope.get("client")
        address = f"{client[0]}:{client[1]}" if client else "-"
        names = query_names(scope.get("query_string", b""))
        path = scope.get("root_path", "") + scope["path"]
        shown = f"{path}?{'&'.join(names)}" if names else path
        log.info(
            '%s "%s %s" %d %d B %.1f ms%s',
            address,
            scope["method"],
            shown,
            status,
            sent,
            seconds * 1000,
            f" model={model}" if model else "",
            extra={
                "client": address,
                "method": scope["method"],
                "path": path,
                "query": names,
                "status": status,
                "bytes": sent,
                "duration_ms": round(seconds * 1000, 3),
                "model": model,
                "request_id": scope.get("state", {}).get("request_id"),
                "trace_id": scope.get("state", {}).get("trace_id"),
            },
        )


def query_names(raw: bytes) -> list[str]:
    """The parameter names of a query string, in order, without their values."""
    from urllib.parse import unquote_plus

    names = []
    for pair in raw.decode("latin-1").split("&"):
        if pair:
            names.append(unquote_plus(pair.partition("=")[0])[:64])
    return names
