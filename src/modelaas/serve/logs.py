"""Log set-up for server processes (done by the process, never at import)."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"))
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
