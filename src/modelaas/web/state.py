"""What the app keeps between requests: settings, the runtime, derived flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

if TYPE_CHECKING:
    from modelaas.jobs.service import JobService
    from modelaas.runtime import Runtime
    from modelaas.settings import Settings


@dataclass
class AppState:
    settings: Settings
    runtime: Runtime
    spool_root: Path
    """Where this process writes uploads (deleted at shutdown; swept if it dies)."""
    jobs: JobService | None = None
    """Training jobs, when the train endpoint is on."""
    openapi: dict[str, Any] | None = None
    """The OpenAPI 3.1 document, built on first request."""
    swagger2: dict[str, Any] | None = None
    """The Swagger 2.0 document (``/swagger.json``), built on first request."""
    debug_log: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def has_v1(self) -> bool:
        return any(m.interface == "v1" for m in self.runtime.models())


def state(request: Request) -> AppState:
    st: AppState = request.app.state.modelaas
    return st
