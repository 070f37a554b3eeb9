"""``GET <b>/``, ``GET <b>/v2/`` and ``GET <b>/v1/``: the API versions."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelaas.web.render import JSON
from modelaas.web.state import state


def version_v2(base: str) -> dict[str, Any]:
    return {"version": "stable", "id": "v2", "links": [_self(f"{base}/v2/")]}


def version_v1(base: str) -> dict[str, Any]:
    return {"version": "deprecated", "id": "v1", "links": [_self(f"{base}/v1/")]}


def _self(href: str) -> dict[str, str]:
    return {"rel": "self", "type": "application/json", "href": href}


async def root(request: Request) -> Response:
    st = state(request)
    base = st.settings.base_path
    versions = [version_v2(base)]
    if st.has_v1:
        versions.append(version_v1(base))
    links = []
    if st.settings.doc_endpoint:
        links.append({"rel": "help", "type": "text/html", "href": f"{base}/api"})
        links.append({"rel": "describedby", "type": "application/json", "href": f"{base}/swagger.json"})
    return JSON({"versions": versions, "links": links})


async def v2(request: Request) -> Response:
    return JSON(version_v2(state(request).settings.base_path))


async def v1(request: Request) -> Response:
    return JSON(version_v1(state(request).settings.base_path))
