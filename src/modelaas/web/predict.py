"""``POST <b>/v2/models/<m>/predict/`` (and the v1 form): parse, run, answer.

Written as a plain ASGI endpoint so that uploaded files are deleted when the answer has
been sent (or has failed), whatever happens. It is the hot path of a serving process, so
it reads the raw ASGI scope itself: the four request headers it needs in one pass, the
query string parsed once, no body read when the request has none (no
Content-Type, no Transfer-Encoding, no Content-Length or 0), and a JSON answer sent as two ASGI messages.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from modelaas.errors import OutputInvalid
from modelaas.web.args import collect
from modelaas.web.raw import RawEndpoint, wanted_headers
from modelaas.web.render import send_answer
from modelaas.web.uploads import RequestBody, read_body

_WANTED = {
    b"content-length": "content-length",
    b"content-type": "content-type",
    b"transfer-encoding": "transfer-encoding",
    b"accept": "accept",
}


class PredictEndpoint(RawEndpoint):
    """ASGI app answering predict for the model named in the path."""

    def __init__(self, *, v1: bool = False) -> None:
        super().__init__()
        self.v1 = v1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        st = self._state_of(scope)
        settings = st.settings
        name = scope["path_params"]["model"]
        if self.v1:
            from modelaas.web.models import v1_model

            adapter = v1_model(Request(scope, receive))
        else:
            adapter = st.runtime.model(name)
        params = adapter.params_for("predict")
        headers = wanted_headers(scope, _WANTED)
        if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers or "content-type" in headers:
            body = await read_body(
                receive,
                headers,
                spool_root=st.spool_root,
                max_body=settings.client_max_size,
                max_parts=settings.max_parts,
                max_field_size=settings.max_field_size,
            )
        else:  # HTTP/1.1: without Content-Length and Transfer-Encoding, there is no body
            body = _NO_BODY
        scope.setdefault("state", {})["client_input"] = body  # what the client sent: never redacted from its answers
        try:
            query = _query(scope["query_string"].decode("latin-1"))
            raw = collect(params, query, body.fields, body.files, body.json, scope["headers"])
            answer = await st.runtime.predict(
                name,
                raw,
                accept=headers.get("accept"),
                gone=lambda: Request(scope, receive).is_disconnected(),
                envelope=not self.v1,
                spool_root=st.spool_root,
            )
            try:
                await send_answer(answer, scope, receive, send, adapter.serving_headers)
            except OutputInvalid as exc:  # NaN, infinities: raised before anything is sent
                raise exc.of_model(name) from None
        finally:
            if body is not _NO_BODY:
                body.cleanup()


_NO_BODY = RequestBody()
"""What a request without a body carried (shared: only ever read)."""


def _query(text: str) -> list[tuple[str, str]]:
    """``parse_qsl(text, keep_blank_values=True)``, without its unquoting when nothing is quoted."""
    if "%" in text or "+" in text:
        return parse_qsl(text, keep_blank_values=True)
    return [(name, value) for name, _, value in (pair.partition("=") for pair in text.split("&") if pair)]
