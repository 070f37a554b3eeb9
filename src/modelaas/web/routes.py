"""The flat route table. Switched-off endpoints are simply not in it (404, absent from docs)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from modelaas.web import debug, docs, health, models, train, ui, versions
from modelaas.web.predict import PredictEndpoint
from modelaas.web.state import AppState


def build_routes(st: AppState) -> list[BaseRoute]:
    s = st.settings
    b = s.base_path
    routes: list[BaseRoute] = []
    if s.predict_endpoint:  # first: the hot path, matched before the rest is tried
        routes.append(Route(f"{b}/v2/models/{{model}}/predict/", PredictEndpoint(), methods=["POST"]))
    routes += [
        Route(f"{b}/", ui.root if s.doc_endpoint else versions.root, methods=["GET"]),
        Route(f"{b}/v2/", versions.v2, methods=["GET"]),
        Route(f"{b}/v2/models/", models.index, methods=["GET"]),
        Route(f"{b}/v2/models/{{model}}/", models.show, methods=["GET"]),
        Route(f"{b}/v2/debug/", debug.show, methods=["GET"]),
        Route(f"{b}/healthz", health.healthz, methods=["GET"]),
        Route(f"{b}/readyz", health.readyz, methods=["GET"]),
    ]
    if s.train_endpoint:
        m = f"{b}/v2/models/{{model}}/train"
        routes += [
            Route(f"{m}/", train.SubmitEndpoint(), methods=["POST"]),
            Route(f"{m}/", train.index, methods=["GET"]),
            Route(f"{m}/{{job}}", train.show, methods=["GET"]),
            Route(f"{m}/{{job}}", train.delete, methods=["DELETE"]),
            Route(f"{m}/{{job}}/logs", train.logs, methods=["GET"]),
            Route(f"{m}/{{job}}/events", train.events, methods=["GET"]),
            Route(f"{m}/{{job}}/files", train.files, methods=["GET"]),
            Route(f"{m}/{{job}}/files/{{path:path}}", train.file, methods=["GET"]),
        ]
    if s.doc_endpoint:
        routes += [
            Route(f"{b}/openapi.json", docs.openapi_json, methods=["GET"]),
            Route(f"{b}/swagger.json", docs.openapi_json, methods=["GET"]),
            Route(f"{b}/api", docs.swagger_ui, methods=["GET"]),
            Route(f"{b}/api/static/{{asset}}", docs.swagger_asset, methods=["GET"]),
            Route(f"{b}/ui", docs.ui_page, methods=["GET"]),
            Route(f"{b}/ui/static/{{asset}}", docs.ui_asset, methods=["GET"]),
        ]
    if st.has_v1:
        routes += [
            Route(f"{b}/v1/", versions.v1, methods=["GET"]),
            Route(f"{b}/v1/models/", models.v1_index, methods=["GET"]),
            Route(f"{b}/v1/models/{{model}}", models.v1_show, methods=["GET"]),
        ]
        if s.predict_endpoint:
            routes.append(Route(f"{b}/v1/models/{{model}}/predict", PredictEndpoint(v1=True), methods=["POST"]))
        if s.train_endpoint:
            routes.append(Route(f"{b}/v1/models/{{model}}/train", train.SubmitEndpoint(wait=True), methods=["PUT"]))
    extra = [Route(f"{b}/ui/", docs.ui_slash, methods=["GET"])] if s.doc_endpoint else []
    return routes + _slash_redirects(routes, base=b) + extra


def _slash_redirects(routes: list[BaseRoute], *, base: str) -> list[BaseRoute]:
    """A path without its trailing slash answers 308 to the slashed path (method kept)."""
    extra: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, Route) and route.path.endswith("/") and route.path != "/":
            methods = sorted((route.methods or {"GET"}) - {"HEAD"})
            extra.append(Route(route.path.rstrip("/"), _redirect_to_slash, methods=methods))
    return extra


async def _redirect_to_slash(request: Request) -> Response:
    url = request.url
    target = url.path + "/" + (f"?{url.query}" if url.query else "")
    return RedirectResponse(target, status_code=308)
