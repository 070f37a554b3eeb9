"""The Open Inference Protocol over REST: health, server and model metadata, readiness and infer.

Thin over :class:`~modelaas.oip.dataplane.DataPlane`: parse (JSON, or a JSON header of
``Inference-Header-Content-Length`` bytes followed by binary tensor data), call, render.
OIP paths never end in a slash; the DEEPaaS routes always do (see docs/oip.md for where
the two meet). Errors on these routes are ``{"error": "..."}``.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelaas.errors import BadRequest, ModelaasError, PayloadTooLarge, ValidationError
from modelaas.oip.codec import output_json
from modelaas.oip.dataplane import DataPlane, InferResponse, parse_infer_request
from modelaas.tokens import ANY_TOKEN, PREDICT, PUBLIC
from modelaas.web.access import ApiRoute
from modelaas.web.errors import public_message, request_id
from modelaas.web.render import JSON, json_bytes
from modelaas.web.state import AppState, state
from modelaas.web.uploads import json_too_deep

HEADER_LENGTH = "inference-header-content-length"


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
            routes.append(ApiRoute(f"{m}/infer", infer, methods=["POST"], access=PREDICT, oip=True))
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
    p = request.path_params
    try:
        return JSON(dataplane(request).model_metadata(p["model"], p.get("version")))
    except ModelaasError as exc:
        return error(request, exc)


async def model_ready(request: Request) -> Response:
    p = request.path_params
    try:
        is_ready = dataplane(request).model_ready(p["model"], p.get("version"))
    except ModelaasError as exc:
        return error(request, exc)
    return JSON({"name": p["model"], "ready": is_ready}, status_code=200 if is_ready else 400)


async def infer(request: Request) -> Response:
    p = request.path_params
    st = state(request)
    try:
        body = await _body(request, st.settings.client_max_size)
        header, binary = _split(request, body)
        req = parse_infer_request(header, binary)
        result = await dataplane(request).infer(
            p["model"], p.get("version"), req, gone=request.is_disconnected, spool_root=st.spool_root
        )
        return _response(result)
    except ModelaasError as exc:
        return error(request, exc)


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"The request body is over the limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is over the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _split(request: Request, body: bytes) -> tuple[Any, memoryview | None]:
    """The JSON inference header and the binary data after it (None without the extension)."""
    given = request.headers.get(HEADER_LENGTH)
    binary: memoryview | None = None
    text = body
    if given is not None:
        if not given.strip().isdigit() or int(given) > len(body):
            raise BadRequest(
                f"Inference-Header-Content-Length is {given!r}, but the body has {len(body)} bytes: "
                "it must be the length of the JSON header that starts the body."
            )
        n = int(given)
        text, binary = body[:n], memoryview(body)[n:]
    if request.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
        raise BadRequest("Compressed request bodies (Content-Encoding) are not accepted; send them uncompressed.")
    try:
        header = json.loads(text)
    except RecursionError:
        raise BadRequest("The inference header nests arrays and objects too deeply.") from None
    except ValueError as exc:
        raise BadRequest(f"The inference header is not valid JSON: {exc}.") from None
    if json_too_deep(header):
        raise BadRequest("The inference header nests arrays and objects too deeply.")
    return header, binary


def _response(result: InferResponse) -> Response:
    head: dict[str, Any] = {"model_name": result.model_name}
    if result.model_version:
        head["model_version"] = result.model_version
    if result.id is not None:
        head["id"] = result.id
    outs = []
    blobs = []
    for tensor, binary in result.outputs:
        out, raw = output_json(tensor, binary=binary)
        outs.append(out)
        if raw is not None:
            blobs.append(raw)
    head["outputs"] = outs
    text = json_bytes(head)
    if not blobs:
        return Response(text, media_type="application/json")
    return Response(
        b"".join([text, *blobs]),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(text))},
    )
