"""``POST <b>/v2/models/<m>[/versions/<v>]/infer``: the Open Inference Protocol's hot path.

A plain ASGI endpoint like DEEPaaS predict (web/predict.py): the three request headers it
needs read from the raw scope in one pass, the body gathered from ``receive`` under the
size limit, the answer sent as two ASGI messages. No Request or Response objects unless
something goes wrong (an error answer is built the ordinary way, by web/oip.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelaas.errors import BadRequest, ModelaasError, PayloadTooLarge
from modelaas.oip.codec import output_json
from modelaas.oip.dataplane import DataPlane, InferResponse, parse_infer_request
from modelaas.web.raw import RawEndpoint, wanted_headers
from modelaas.web.render import json_bytes
from modelaas.web.state import AppState
from modelaas.web.uploads import JSON_MAX_DEPTH, json_too_deep

_WANTED = {
    b"content-length": "content-length",
    b"content-encoding": "content-encoding",
    b"inference-header-content-length": "inference-header-content-length",
}
_JSON = [(b"content-type", b"application/json")]
_BINARY = (b"content-type", b"application/octet-stream")


class InferEndpoint(RawEndpoint):
    """ASGI app answering OIP infer for the model (and version) named in the path.

    ``dataplane_of(state)`` gives the app's data plane; ``error(request, exc)`` the OIP error answer.
    """

    def __init__(
        self,
        dataplane_of: Callable[[AppState], DataPlane],
        error: Callable[[Request, ModelaasError], Response],
    ) -> None:
        super().__init__()
        self.dataplane_of = dataplane_of
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        st = self._state_of(scope)
        scope.setdefault("state", {})["oip"] = True  # even an unexpected error is answered in the protocol's shape
        p = scope["path_params"]
        try:
            plane = self.dataplane_of(st)
            adapter = plane.model(p["model"], p.get("version"))  # an unknown model: 404 before the body is read
            headers = wanted_headers(scope, _WANTED)
            body = await _body(receive, headers, st.settings.client_max_size)
            header, binary = _split(headers, body)
            req = parse_infer_request(header, binary)
            result = await plane.infer(
                p["model"],
                p.get("version"),
                req,
                gone=lambda: Request(scope, receive).is_disconnected(),
                spool_root=st.spool_root,
            )
            start, content = _answer(result)
            start["headers"] += adapter.serving_headers
        except ModelaasError as exc:
            await self.error(Request(scope, receive), exc)(scope, receive, send)
            return
        await send(start)
        await send({"type": "http.response.body", "body": content})


async def _body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    length = headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"The request body is over the limit of {limit} bytes.")
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False) and message["type"] == "http.request":
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body is over the limit of {limit} bytes.")
        return body  # the whole body in one message: no copy
    chunks = [body]
    size = len(body)
    while message["type"] == "http.request" and message.get("more_body", False):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is over the limit of {limit} bytes.")
        chunks.append(chunk)
    if message["type"] == "http.disconnect":
        raise BadRequest("The client disconnected before its request body arrived.")
    return b"".join(chunks)


def _split(headers: dict[str, str], body: bytes) -> tuple[Any, memoryview | None]:
    """The JSON inference header and the binary data after it (None without the extension)."""
    given = headers.get("inference-header-content-length")
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
    if headers.get("content-encoding", "identity").lower() not in ("identity", ""):
        raise BadRequest("Compressed request bodies (Content-Encoding) are not accepted; send them uncompressed.")
    try:
        header = json.loads(text)
    except RecursionError:
        raise BadRequest("The inference header nests arrays and objects too deeply.") from None
    except ValueError as exc:
        raise BadRequest(f"The inference header is not valid JSON: {exc}.") from None
    # each level of nesting takes two bytes ([ and ]): a shorter text cannot nest too deeply
    if len(text) > 2 * JSON_MAX_DEPTH and json_too_deep(header):
        raise BadRequest("The inference header nests arrays and objects too deeply.")
    return header, binary


def _answer(result: InferResponse) -> tuple[dict[str, Any], bytes]:
    """The ``http.response.start`` message and the body of an infer answer (JSON, or JSON then binary data)."""
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
        headers = [(b"content-length", b"%d" % len(text)), *_JSON]
        return {"type": "http.response.start", "status": 200, "headers": headers}, text
    content = b"".join([text, *blobs])
    headers = [
        (b"content-length", b"%d" % len(content)),
        _BINARY,
        (b"inference-header-content-length", b"%d" % len(text)),
    ]
    return {"type": "http.response.start", "status": 200, "headers": headers}, content
