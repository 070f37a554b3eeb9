"""What each route needs of a request's access token, declared with the route (web/routes.py)."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Route

from modelaas.tokens import PUBLIC


class ApiRoute(Route):
    """A route with what it needs of a request's token (``access``) and whether it streams events.

    ``oip``: an Open Inference Protocol route, whose errors are ``{"error": ...}``.
    """

    def __init__(
        self, path: str, endpoint: Any, *, methods: list[str], access: str, streams: bool = False, oip: bool = False
    ) -> None:
        super().__init__(path, endpoint, methods=methods)
        self.access = access
        self.streams = streams
        self.oip = oip


def access_of(route: BaseRoute) -> tuple[str, bool]:
    """``(access, streams)`` of a route (a route not declared here is public)."""
    return getattr(route, "access", PUBLIC), getattr(route, "streams", False)


def requirement(path: str, routes: list[BaseRoute]) -> tuple[str, bool]:
    """What a request path (or a documented path) needs, from the route that serves it.

    A path no route serves is judged by the longest of its leading parts that one serves
    (``/v2/models/m/train/<id>/nothing`` needs what the job's route needs).
    """
    candidate = path
    while True:
        for route in routes:
            if isinstance(route, Route) and route.path_regex.match(candidate):
                return access_of(route)
        if "/" not in candidate.rstrip("/"):
            return PUBLIC, False
        candidate = candidate.rstrip("/").rsplit("/", 1)[0] or "/"
