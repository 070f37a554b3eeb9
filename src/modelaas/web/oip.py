"""The Open Inference Protocol over REST: health, server and model metadata, readiness and infer.

Thin over :class:`~modelaas.oip.dataplane.DataPlane`; infer, the hot path, is a plain ASGI
endpoint of its own (web/oip_infer.py).
OIP paths never end in a slash; the DEEPaaS routes always do (see docs/oip.md for where
the two meet). Errors on these routes are ``{"error": "..."}``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from starlette.requests import Request
from starlette.responses import Response

from modelaas.errors import ModelaasError, ValidationError
from modelaas.oip.dataplane import DataPlane
from modelaas.tokens import ANY_TOKEN, PREDICT, PUBLIC
from modelaas.web.access import ApiRoute
from modelaas.web.errors import public_message, request_id
from modelaas.web.oip_infer import InferEndpoint
from modelaas.web.render import JSON
from modelaas.web.state import AppState, state


def oip_routes(st: AppState) -> list[ApiRoute]:
    b = st.settings.base_path
    routes = [
        ApiRoute(f"{b}/v2/health/live", live, methods=["GET"], access=PUBLIC, oip=True),
        ApiRoute(f"{b}/v2/health/ready", ready, methods=["GET"], access=PUBLIC, oip=True),
        ApiRoute(f"{b}/v2", server_metadata, methods=["GET"], access=PUBLIC, oip=True),
    ]
    for m in (f"{b}/v2/models/{{model}}", f"{b}/v2/models/{{model}}/versions/{{version}}"):
        routes += [
            ApiRoute(m, model_metadata, methods=["GET"], access=ANY_TOKEN, oip=True),
            ApiRoute(f"{m}/ready", model_ready, methods=["GET"], access=ANY_TOKEN, oip=True),
        ]
        if st.settings.predict_endpoint:
            routes.append(
                ApiRoute(f"{m}/infer", InferEndpoint(dataplane_of, error), methods=["POST"], access=PREDICT, oip=True)
            )
    return routes


def dataplane(request: Request) -> DataPlane:
    return dataplane_of(state(request))


def dataplane_of(st: AppState) -> DataPlane:
    """The app's data plane (built once; the gRPC server of a serving process shares it)."""
    if st.oip is None:
        try:
            server_version = version("modelaas")
        except PackageNotFoundError:
            server_version = ""
        st.oip = DataPlane(st.runtime, server_version=server_version)
    plane: DataPlane = st.oip
    return plane


def error(request: Request, exc: ModelaasError) -> Response:
    """``{"error": message}``: 400 for arguments that fail validation (naming each input)."""
    status = 400 if isinstance(exc, ValidationError) else exc.status
    headers = dict(exc.headers())
    if status in (408, 413):
        headers.setdefault("Connection", "close")
    body = {"error": public_message(request, exc)}
    rid = request_id(request.scope)
    if rid is not None:
        body["request_id"] = rid
    return JSON(body, status_code=status, headers=headers)


async def live(request: Request) -> Response:
    return JSON({"live": dataplane(request).live()})


async def ready(request: Request) -> Response:
    is_ready = dataplane(request).ready()
    return JSON({"ready": is_ready}, status_code=200 if is_ready else 400)


async def server_metadata(request: Request) -> Response:
    return JSON(dataplane(request).server_metadata())


async def model_metadata(request: Request) -> Response:
    """The model's OIP metadata; for a registered version number, with that version's record
    (``versions/<v>``: web/model_versions.py) even when it is not the one served."""
    from modelaas.web.model_versions import record

    p = request.path_params
    try:
        version = p.get("version")
        found = await record(request, p["model"], version) if version else None
        if found is not None:
            state(request).runtime.model(p["model"])
            return JSON({**dataplane(request).model_metadata(p["model"]), **found})
        return JSON(dataplane(request).model_metadata(p["model"], version))
    except ModelaasError as exc:
        return error(request, exc)


async def model_ready(request: Request) -> Response:
    p = request.path_params
    try:
        is_ready = dataplane(request).model_ready(p["model"], p.get("version"))
    except ModelaasError as exc:
        return error(request, exc)
    return JSON({"name": p["model"], "ready": is_ready}, status_code=200 if is_ready else 400)
