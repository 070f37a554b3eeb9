"""What the app keeps between requests: settings, the runtime, derived flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from modelaas.runtime import Runtime
from modelaas.settings import Settings


@dataclass
class AppState:
    settings: Settings
    runtime: Runtime
    openapi: dict[str, Any] | None = None
    debug_log: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def has_v1(self) -> bool:
        return any(m.interface == "v1" for m in self.runtime.models())


def state(request: Request) -> AppState:
    return request.app.state.modelaas  # type: ignore[no-any-return]
