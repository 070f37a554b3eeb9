"""``GET <b>/v2/debug/``: 204, or the captured log when ``--debug-endpoint`` is on."""

from __future__ import annotations

import collections
import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from modelaas.web.state import state


class LogCapture(logging.Handler):
    """Keeps the last ``capacity`` formatted log records in memory."""

    def __init__(self, capacity: int = 2000) -> None:
        super().__init__(logging.DEBUG)
        self.lines: collections.deque[str] = collections.deque(maxlen=capacity)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.handleError(record)


async def show(request: Request) -> Response:
    capture = state(request).debug_log
    if capture is None:
        return Response(status_code=204)
    return PlainTextResponse("\n".join(capture.lines) + "\n")
