"""``GET <b>/v2/models/`` and ``GET <b>/v2/models/<m>/`` (and their v1 forms)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelaas.model.adapters import ModelAdapter
from modelaas.web.render import JSON
from modelaas.web.state import state


def entry(adapter: ModelAdapter, href: str) -> dict[str, Any]:
    """A model's listing entry: id, name, links, updated with its metadata."""
    out: dict[str, Any] = {"id": adapter.name, "name": adapter.name, "links": [{"rel": "self", "href": href}]}
    out.update(adapter.metadata())
    return out


async def index(request: Request) -> Response:
    st = state(request)
    base = f"{st.settings.base_path}/v2/models"
    return JSON({"models": [entry(m, f"{base}/{m.name}") for m in st.runtime.models()]})


async def show(request: Request) -> Response:
    st = state(request)
    adapter = st.runtime.model(request.path_params["model"])
    return JSON(entry(adapter, f"{st.settings.base_path}/v2/models/{adapter.name}"))


def v1_models(request: Request) -> list[ModelAdapter]:
    return [m for m in state(request).runtime.models() if m.interface == "v1"]


async def v1_index(request: Request) -> Response:
    base = f"{state(request).settings.base_path}/v1/models"
    return JSON({"models": [entry(m, f"{base}/{m.name}") for m in v1_models(request)]})


async def v1_show(request: Request) -> Response:
    adapter = v1_model(request)
    return JSON(entry(adapter, f"{state(request).settings.base_path}/v1/models/{adapter.name}"))


def v1_model(request: Request) -> ModelAdapter:
    from modelaas.errors import ModelNotFound

    name = request.path_params["model"]
    v1 = {m.name: m for m in v1_models(request)}
    if name not in v1:
        raise ModelNotFound(name, list(v1))
    return v1[name]
