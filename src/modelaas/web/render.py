"""Answers and JSON documents as HTTP responses."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import FileResponse, Response

from modelaas.answers import Answer
from modelaas.errors import OutputInvalid


class JSON(Response):
    """Compact UTF-8 JSON; NaN and infinities are refused, not sent as invalid JSON."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
        except ValueError as exc:
            raise OutputInvalid(f"The answer cannot be sent as JSON: {exc}") from None


def answer_response(answer: Answer) -> Response:
    if answer.path is not None:
        return FileResponse(
            answer.path, media_type=answer.media_type, filename=answer.filename, content_disposition_type="attachment"
        )
    if answer.content is not None:
        return Response(answer.content, media_type=answer.media_type)
    return JSON(answer.json)
