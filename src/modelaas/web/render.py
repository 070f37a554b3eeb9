"""Answers and JSON documents as HTTP responses."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import FileResponse, Response
from starlette.types import Receive, Scope, Send

from modelaas.errors import OutputInvalid
from modelaas.runtime.answers import Answer

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
"""Compact UTF-8 JSON; NaN and infinities refused. Built once: json.dumps with options builds one per call."""
_JSON_TYPE = (b"content-type", b"application/json")


def json_bytes(content: Any) -> bytes:
    """``content`` as compact UTF-8 JSON (OutputInvalid for NaN, infinities and non-JSON values)."""
    try:
        return _ENCODER.encode(content).encode("utf-8")
    except ValueError as exc:
        raise OutputInvalid(f"The answer cannot be sent as JSON: {exc}") from None


class JSON(Response):
    """Compact UTF-8 JSON; NaN and infinities are refused, not sent as invalid JSON."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def answer_response(answer: Answer) -> Response:
    if answer.path is not None:
        return FileResponse(
            answer.path, media_type=answer.media_type, filename=answer.filename, content_disposition_type="attachment"
        )
    if answer.content is not None:
        headers = {"content-disposition": content_disposition(answer.filename)} if answer.filename else None
        return Response(answer.content, media_type=answer.media_type, headers=headers)
    return JSON(answer.json)


def content_disposition(filename: str) -> str:
    """``attachment`` with the file name, as Starlette's FileResponse writes it (RFC 6266 / 5987)."""
    from urllib.parse import quote

    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'


async def send_answer(
    answer: Answer, scope: Scope, receive: Receive, send: Send, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send ``answer``: the same bytes and headers as :func:`answer_response`, JSON without a Response
    object; ``extra`` headers added."""
    if answer.path is not None or answer.content is not None:
        response = answer_response(answer)
        if extra:
            response.raw_headers.extend(extra)
        await response(scope, receive, send)
        return
    body = json_bytes(answer.json)
    headers = [(b"content-length", b"%d" % len(body)), _JSON_TYPE]
    if extra:
        headers += extra
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
