"""A request's URL inputs, fetched before the model is called.

A typed model's ``URLFile`` arguments (:class:`~modelaas.model.urlfile.URLFile`) arrive as
URL strings; here each is downloaded with the guarded fetcher into a directory of the
request's and replaced by the local file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from modelaas.errors import ModelaasError
from modelaas.model.params import ParamSet
from modelaas.model.urlfile import URLFile
from modelaas.telemetry import metrics


async def fetch_url_files(params: ParamSet, kwargs: dict[str, Any], dest_dir: Path, policy: Any) -> dict[str, Any]:
    """``kwargs`` with the URL of every URL-file argument (``extra["fetch"]``) replaced by a fetched :class:`URLFile`.

    Fetches with :func:`modelaas.fetch.download.fetch` under ``policy`` (a ``FetchPolicy``) into
    ``dest_dir``; the caller deletes ``dest_dir``. Errors name the argument.
    """
    from modelaas.fetch.download import fetch  # httpx is imported only when a URL is fetched

    out = dict(kwargs)
    for p in params:
        value = out.get(p.name)
        if not p.extra.get("fetch") or value is None:
            continue
        files = []
        for url in list(value) if p.is_array else [value]:
            try:
                got = await fetch(str(url), dest_dir, policy, media_types=p.media_types)
            except ModelaasError as exc:
                metrics.current().fetched(type(exc).__name__)
                raise type(exc)(f"Argument {p.wire_name!r}: {exc.message}") from None
            metrics.current().fetched("ok")
            files.append(URLFile(p.wire_name, str(got.path), got.content_type, original_name(str(url))))
        out[p.name] = files if p.is_array else files[0]
    return out


def original_name(url: str) -> str:
    """The last segment of the URL's path, percent-decoded: data for the model, never a path."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])
