"""The web UI: one HTML page and its hand-written assets, served by modelaas itself.

The page (``GET <b>/ui``, and ``GET <b>/`` for clients that prefer HTML over JSON) reads
everything it shows from the API: model metadata from ``<b>/v2/models/``, each model's
arguments from ``<b>/openapi.json``, then predict, train and the job routes. The base
path is injected into the page (a ``<meta>`` tag), so the scripts need no inline code and
the page runs under a strict Content-Security-Policy: nothing is loaded from elsewhere.
"""

from __future__ import annotations

import html
from functools import lru_cache
from importlib import resources

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from modelaas.errors import NotAcceptable
from modelaas.runtime.media import negotiate
from modelaas.web import versions
from modelaas.web.state import state

ASSETS = {
    "ui.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "form.js": "text/javascript; charset=utf-8",
    "answer.js": "text/javascript; charset=utf-8",
    "train.js": "text/javascript; charset=utf-8",
    "versions.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "dom.js": "text/javascript; charset=utf-8",
    "ui.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)
_HTML_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _static(name: str) -> bytes:
    return resources.files("modelaas.web").joinpath("static").joinpath("ui").joinpath(name).read_bytes()


@lru_cache(maxsize=1)
def _template() -> str:
    return _static("index.html").decode("utf-8")


def render_page(base: str, title: str) -> str:
    """The UI page with ``base`` (the base path) and ``title`` filled in."""
    return _template().replace("%BASE%", html.escape(base, quote=True)).replace("%TITLE%", html.escape(title))


async def page(request: Request) -> Response:
    """``GET <b>/ui``: the UI page."""
    st = state(request)
    title = f"{', '.join(st.runtime.names)} - modelaas"
    return HTMLResponse(render_page(st.settings.base_path, title), headers=_HTML_HEADERS)


async def asset(request: Request) -> Response:
    """``GET <b>/ui/static/<name>``: one of the UI's files (a fixed list; anything else is 404)."""
    name = request.path_params["asset"]
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, f"No such asset: {name}")
    return Response(
        _static(name),
        media_type=media_type,
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


def prefers_html(accept: str | None) -> bool:
    """Whether an ``Accept`` header prefers HTML over JSON (ties, ``*/*`` and no header: JSON)."""
    if not accept:
        return False
    try:
        return negotiate(accept, ["application/json", "text/html"]) == "text/html"
    except NotAcceptable:
        return False


async def root(request: Request) -> Response:
    """``GET <b>/``: the UI for browsers (Accept prefers HTML), the versions document for the rest."""
    st = state(request)
    if st.settings.doc_endpoint and prefers_html(request.headers.get("accept")):
        response = await page(request)
    else:
        response = await versions.root(request)
    response.headers["Vary"] = "Accept"
    return response
