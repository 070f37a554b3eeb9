"""``POST <b>/v2/models/<m>/predict/`` (and the v1 form): parse, run, answer.

Written as a plain ASGI endpoint so that uploaded files are deleted when the answer has
been sent (or has failed), whatever happens.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from modelaas.errors import NotImplementedByModel
from modelaas.web.args import collect
from modelaas.web.render import answer_response
from modelaas.web.state import state
from modelaas.web.uploads import read_body


class PredictEndpoint:
    """ASGI app answering predict for the model named in the path."""

    def __init__(self, *, v1: bool = False) -> None:
        self.v1 = v1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        st = state(request)
        settings = st.settings
        name = request.path_params["model"]
        if self.v1:
            from modelaas.web.models import v1_model

            adapter = v1_model(request)
        else:
            adapter = st.runtime.model(name)
        params = adapter.predict_params
        if params is None:
            raise NotImplementedByModel(f"Model {name!r} does not implement predict.")
        body = await read_body(
            receive,
            request.headers,
            spool_root=st.spool_root,
            max_body=settings.client_max_size,
            max_parts=settings.max_parts,
            max_field_size=settings.max_field_size,
        )
        try:
            raw = collect(params, request.query_params.multi_items(), body.fields, body.files, body.json)
            answer = await st.runtime.predict(
                name,
                raw,
                accept=request.headers.get("accept"),
                gone=request.is_disconnected,
                envelope=not self.v1,
                spool_root=st.spool_root,
            )
            await answer_response(answer)(scope, receive, send)
        finally:
            body.cleanup()
