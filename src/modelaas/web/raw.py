"""What the plain ASGI endpoints of the hot paths share (DEEPaaS predict, OIP infer): the app
state found once per app, and the few request headers they need read from the raw scope."""

from __future__ import annotations

from typing import Any

from starlette.types import Scope

from modelaas.web.state import AppState


class RawEndpoint:
    """An ASGI endpoint that finds its app's state once (not on every request)."""

    def __init__(self) -> None:
        self._app: Any = None
        self._state: AppState | None = None

    def _state_of(self, scope: Scope) -> AppState:
        app = scope["app"]
        if app is not self._app or self._state is None:
            self._app, self._state = app, app.state.modelaas
        assert self._state is not None
        return self._state


def wanted_headers(scope: Scope, wanted: dict[bytes, str]) -> dict[str, str]:
    """The request headers named in ``wanted`` (raw lower-case name -> key), the first of repeated
    ones; ASGI servers give header names in lower case, and this relies on it (as Starlette does)."""
    found: dict[str, str] = {}
    for key, value in scope["headers"]:
        name = wanted.get(key)
        if name is not None and name not in found:
            found[name] = value.decode("latin-1")
    return found
