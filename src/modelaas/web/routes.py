"""The flat route table. Switched-off endpoints are simply not in it (404, absent from docs).

Each route says, where it is declared, what a request's access token must allow
(:class:`ApiRoute` of web/access.py: ``public``, any ``token``, or the ``predict``/``train``/``admin``
scope) and whether it is an event stream (whose token may come in the query, as
``EventSource`` cannot send headers). Access control (web/middleware.py) and the API
documents (web/openapi/security.py) read that, through ``access.requirement``.

Routes are written one per method; :func:`_one_route_per_path` then joins those of the same
path into one route that dispatches on the method, so that a 405 answer's ``Allow`` header
lists every method the path serves (HEAD included where GET is, as Starlette adds it). A
path with repeated slashes answers 308 to the path with single slashes when that one is
served (DEEPaaS does so; the DEEPaaS web UI asks for ``<api>//v2/models/<m>/``).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from modelaas.tokens import ADMIN, ANY_TOKEN, METRICS, PREDICT, PUBLIC, TRAIN
from modelaas.web import debug, docs, health, metrics, model_versions, models, oip, train, ui, versions
from modelaas.web.access import ApiRoute, access_of
from modelaas.web.predict import PredictEndpoint
from modelaas.web.state import AppState


def build_routes(st: AppState) -> list[BaseRoute]:
    s = st.settings
    b = s.base_path
    R = ApiRoute
    routes: list[BaseRoute] = []
    if s.predict_endpoint:  # first: the hot path, matched before the rest is tried
        routes.append(R(f"{b}/v2/models/{{model}}/predict/", PredictEndpoint(), methods=["POST"], access=PREDICT))
    routes += [
        R(f"{b}/", ui.root if s.doc_endpoint else versions.root, methods=["GET"], access=PUBLIC),
        R(f"{b}/v2/", versions.v2, methods=["GET"], access=PUBLIC),
        R(f"{b}/v2/models/", models.index, methods=["GET"], access=ANY_TOKEN),
        R(f"{b}/v2/models/{{model}}/", models.show, methods=["GET"], access=ANY_TOKEN),
        R(f"{b}/v2/debug/", debug.show, methods=["GET"], access=ADMIN),
        R(f"{b}/healthz", health.healthz, methods=["GET"], access=PUBLIC),
        R(f"{b}/readyz", health.readyz, methods=["GET"], access=PUBLIC),
        *([R(f"{b}/metrics", metrics.show, methods=["GET"], access=METRICS)] if s.metrics else []),
    ]
    mv = f"{b}/v2/models/{{model}}/versions"
    routes += [
        # one access per path: any token lists; registering checks the train scope itself
        R(f"{mv}/", model_versions.index, methods=["GET"], access=ANY_TOKEN),
        R(f"{mv}/", model_versions.register, methods=["POST"], access=ANY_TOKEN),
        # shares its path with OIP model metadata (any token): the admin scope is checked by the route
        R(f"{mv}/{{version}}", model_versions.delete, methods=["DELETE"], access=ANY_TOKEN),
        R(f"{mv}/{{version}}/activate", model_versions.activate, methods=["POST"], access=ADMIN),
        R(f"{b}/v2/models/{{model}}/reload", model_versions.reload, methods=["POST"], access=ADMIN),
    ]
    if s.train_endpoint:
        m = f"{b}/v2/models/{{model}}/train"
        routes += [
            R(f"{m}/", train.SubmitEndpoint(), methods=["POST"], access=TRAIN),
            R(f"{m}/", train.index, methods=["GET"], access=TRAIN),
            R(f"{m}/{{job}}", train.show, methods=["GET"], access=TRAIN),
            R(f"{m}/{{job}}", train.delete, methods=["DELETE"], access=TRAIN),
            R(f"{m}/{{job}}/logs", train.logs, methods=["GET"], access=TRAIN),
            R(f"{m}/{{job}}/events", train.events, methods=["GET"], access=TRAIN, streams=True),
            R(f"{m}/{{job}}/files", train.files, methods=["GET"], access=TRAIN),
            R(f"{m}/{{job}}/files/{{path:path}}", train.file, methods=["GET"], access=TRAIN),
        ]
    if s.doc_endpoint:
        routes += [
            R(f"{b}/openapi.json", docs.openapi_json, methods=["GET"], access=PUBLIC),
            R(f"{b}/swagger.json", docs.swagger_json, methods=["GET"], access=PUBLIC),
            R(f"{b}/api", docs.swagger_ui, methods=["GET"], access=PUBLIC),
            R(f"{b}/api/static/{{asset}}", docs.swagger_asset, methods=["GET"], access=PUBLIC),
            R(f"{b}/ui", docs.ui_page, methods=["GET"], access=PUBLIC),
            R(f"{b}/ui/static/{{asset}}", docs.ui_asset, methods=["GET"], access=PUBLIC),
        ]
    if st.has_v1:
        routes += [
            R(f"{b}/v1/", versions.v1, methods=["GET"], access=PUBLIC),
            R(f"{b}/v1/models/", models.v1_index, methods=["GET"], access=ANY_TOKEN),
            # DEEPaaS 1.x's own path: the list, not a redirect
            R(f"{b}/v1/models", models.v1_index, methods=["GET"], access=ANY_TOKEN),
            R(f"{b}/v1/models/{{model}}", models.v1_show, methods=["GET"], access=ANY_TOKEN),
        ]
        if s.predict_endpoint:
            v1_predict = PredictEndpoint(v1=True)
            routes.append(R(f"{b}/v1/models/{{model}}/predict", v1_predict, methods=["POST"], access=PREDICT))
        if s.train_endpoint:
            v1_train = train.SubmitEndpoint(wait=True)
            routes.append(R(f"{b}/v1/models/{{model}}/train", v1_train, methods=["PUT"], access=TRAIN))
    extra: list[BaseRoute] = [R(f"{b}/ui/", docs.ui_slash, methods=["GET"], access=PUBLIC)] if s.doc_endpoint else []
    # Open Inference Protocol routes: never a trailing slash; where a DEEPaaS path without its
    # slash would redirect (<b>/v2, <b>/v2/models/<m>), the OIP route answers instead
    protocol = oip.oip_routes(st)
    taken = {r.path for r in protocol}
    redirects = [r for r in _slash_redirects(routes, base=b) if not (isinstance(r, Route) and r.path in taken)]
    hot = [r for r in protocol if r.path.endswith("/infer")]  # matched first, beside DEEPaaS predict
    rest = [r for r in protocol if r not in hot]
    served = _one_route_per_path(routes[:1] + hot + routes[1:] + rest + redirects + extra)
    return [*served, _MergedSlashes(served)]


def _one_route_per_path(routes: list[BaseRoute]) -> list[BaseRoute]:
    """Join the routes of one path (in the place of the first) into one serving all their methods."""
    by_path: dict[str, list[Route]] = {}
    for route in routes:
        if isinstance(route, Route):
            by_path.setdefault(route.path, []).append(route)
    out: list[BaseRoute] = []
    for route in routes:
        if not isinstance(route, Route):
            out.append(route)
            continue
        same = by_path.pop(route.path, None)
        if same is None:
            continue  # joined into the first route of its path
        if len(same) == 1:
            out.append(route)
            continue
        methods = sorted(set().union(*(r.methods or set() for r in same)))
        endpoints = {r.endpoint for r in same}
        access, streams = access_of(route)
        assert all(access_of(r) == (access, streams) for r in same), f"{route.path}: one access per path"
        endpoint = same[0].endpoint if len(endpoints) == 1 else _ByMethod(same)  # one function: the slash redirects
        oip = any(getattr(r, "oip", False) for r in same)  # a path the protocol serves: its error shape
        out.append(ApiRoute(route.path, endpoint, methods=methods, access=access, streams=streams, oip=oip))
    return out


class _ByMethod:
    """The ASGI app of a path served by several routes: the one for the request's method answers."""

    def __init__(self, routes: list[Route]) -> None:
        self.apps: dict[str, ASGIApp] = {}
        for route in routes:
            for method in route.methods or ():
                self.apps.setdefault(method, route.app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the joined route lets only its methods through, and each has an app
        await self.apps[scope["method"]](scope, receive, send)


def _slash_redirects(routes: list[BaseRoute], *, base: str) -> list[BaseRoute]:
    """A path without its trailing slash answers 308 to the slashed path (method kept)."""
    extra: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, Route) and route.path.endswith("/") and route.path != "/":
            methods = sorted((route.methods or {"GET"}) - {"HEAD"})
            access, _ = access_of(route)  # what the slashed path needs (the redirect shows nothing, but says so)
            extra.append(ApiRoute(route.path.rstrip("/"), _redirect_to_slash, methods=methods, access=access))
    return extra


async def _redirect_to_slash(request: Request) -> Response:
    url = request.url
    target = url.path + "/" + (f"?{url.query}" if url.query else "")
    return RedirectResponse(target, status_code=308)


class _MergedSlashes(BaseRoute):
    """Matches a path with repeated slashes whose single-slash form a route serves; answers 308 to that."""

    _REPEATED = re.compile(r"//+")

    def __init__(self, routes: list[BaseRoute]) -> None:
        self.routes = routes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if scope["type"] == "http" and "//" in path:
            merged = {**scope, "path": self._REPEATED.sub("/", path)}
            if any(route.matches(merged)[0] is not Match.NONE for route in self.routes):
                return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        target = self._REPEATED.sub("/", scope["path"]) + (f"?{query}" if query else "")
        await RedirectResponse(target, status_code=308)(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)
