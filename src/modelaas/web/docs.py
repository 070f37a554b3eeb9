"""API docs: the OpenAPI 3.1 and Swagger 2.0 documents, Swagger UI from bundled assets, and ``/ui`` (the web UI)."""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from modelaas.web import ui
from modelaas.web.openapi.document import build_document
from modelaas.web.openapi.swagger2 import build_swagger
from modelaas.web.render import JSON
from modelaas.web.state import AppState, state

SWAGGER_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def _openapi(st: AppState) -> dict[str, Any]:
    if st.openapi is None:
        st.openapi = build_document(st)
    return st.openapi


async def openapi_json(request: Request) -> Response:
    """``GET <b>/openapi.json``: the OpenAPI 3.1 document of exactly what is served."""
    return JSON(_openapi(state(request)))


async def swagger_json(request: Request) -> Response:
    """``GET <b>/swagger.json``: the same API as Swagger 2.0, which DEEPaaS serves there and its tools read."""
    st = state(request)
    if st.swagger2 is None:
        st.swagger2 = build_swagger(st, _openapi(st))
    return JSON(st.swagger2)


async def swagger_ui(request: Request) -> Response:
    st = state(request)
    base = st.settings.base_path
    title = html.escape(f"{', '.join(st.runtime.names)} - modelaas")
    spec_url = json.dumps(f"{base}/openapi.json")
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{base}/api/static/swagger-ui.css">
<link rel="icon" type="image/png" href="{base}/api/static/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{base}/api/static/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{url: {spec_url}, dom_id: "#swagger-ui", deepLinking: true}});
</script>
</body>
</html>
"""
    return HTMLResponse(page)


async def swagger_asset(request: Request) -> Response:
    name = request.path_params["asset"]
    media_type = SWAGGER_ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, f"No such asset: {name}")
    data = resources.files("modelaas.web").joinpath("static").joinpath("swagger-ui").joinpath(name).read_bytes()
    return Response(data, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


async def ui_page(request: Request) -> Response:
    """``GET <b>/ui``: the web UI (see :mod:`modelaas.web.ui`)."""
    return await ui.page(request)


async def ui_asset(request: Request) -> Response:
    """``GET <b>/ui/static/<asset>``: one of the UI's files."""
    return await ui.asset(request)


async def ui_slash(request: Request) -> Response:
    """``GET <b>/ui/`` answers 308 to ``<b>/ui``, where the UI is."""
    return RedirectResponse(request.url.path.rstrip("/"), status_code=308)
