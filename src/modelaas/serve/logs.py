"""Log set-up for server processes (done by the process, never at import)."""

from __future__ import annotations

import logging
import sys

from modelaas.telemetry.logs import ContextFilter, ContextStream, formatter


def configure_logging(level: str, fmt: str = "text", *, capture_output: bool = False) -> None:
    """One handler on stderr, ``fmt`` ``text`` or ``json``, records carrying request and job ids.

    ``capture_output``: what model code prints while it serves a request becomes log
    records with the request's id (serving processes).
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    stream = sys.stderr.wrapped if isinstance(sys.stderr, ContextStream) else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's per-process start and stop lines ("Started server process", "Application startup
    # complete") repeat what modelaas says once for the server: kept for --log-level debug only
    logging.getLogger("uvicorn.error").setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)
    for name in ("httpx", "httpcore"):  # one line per request of our own client is noise
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    if capture_output:
        if not isinstance(sys.stdout, ContextStream):
            sys.stdout = ContextStream(sys.stdout)
        if not isinstance(sys.stderr, ContextStream):
            sys.stderr = ContextStream(sys.stderr)
