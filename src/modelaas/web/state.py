"""What the app keeps between requests: settings, the runtime, tokens, trainings, documents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

if TYPE_CHECKING:
    from modelaas.jobs.service import JobService
    from modelaas.jobs.wiring import Trainings
    from modelaas.runtime import Runtime
    from modelaas.settings import Settings
    from modelaas.tokens import TokenTable
    from modelaas.web.streams import StreamSlots


@dataclass
class AppState:
    settings: Settings
    runtime: Runtime
    spool_root: Path
    """Where this process writes uploads (deleted at shutdown; swept if it dies)."""
    tokens: TokenTable
    """Access tokens (``enabled`` is False when access control is off)."""
    event_streams: StreamSlots
    """Training event streams open at once in this process (``--max-event-streams``)."""
    trainings: Trainings | None = None
    """Training jobs, when the train endpoint is on."""
    openapi: dict[str, Any] | None = None
    """The OpenAPI 3.1 document, built on first request."""
    swagger2: dict[str, Any] | None = None
    """The Swagger 2.0 document (``/swagger.json``), built on first request."""
    routes: list[Any] = field(default_factory=list)
    """The route table (web/routes.py), each route with the access it declares."""
    oip: Any = None
    """The Open Inference Protocol's data plane (:class:`~modelaas.oip.dataplane.DataPlane`), built on first request."""
    versions: Any = None
    """The version registry (:class:`~modelaas.versions.registry.VersionRegistry`), opened on first use."""
    serving_changed: Callable[[], None] | None = None
    """Tells this server's supervisor that a model's serving state changed (it reloads at once)."""
    debug_log: Any = None
    """The log capture of ``/v2/debug/`` (:class:`~modelaas.web.debug.LogCapture`), when it is on."""

    @property
    def jobs(self) -> JobService | None:
        """The service the train routes call (None when training is switched off)."""
        return self.trainings.service if self.trainings is not None else None

    @property
    def has_v1(self) -> bool:
        return any(m.interface == "v1" for m in self.runtime.models())


def state(request: Request) -> AppState:
    st: AppState = request.app.state.modelaas
    return st
