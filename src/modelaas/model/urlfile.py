"""``URLFile``: an argument the client gives as a URL and the server fetches."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from modelaas.errors import ModelaasError
from modelaas.model.files import File
from modelaas.model.params import ParamSet


class URLFile(File):
    """A file the server fetched from a URL the client gave.

    Annotate an argument of a typed model's ``predict`` with ``URLFile`` (or
    ``list[URLFile]``). Clients send an ``http``/``https`` URL as a string; before the
    model is called the server downloads it with its guarded fetcher (only global
    addresses, redirects re-checked, size and time limits: docs/security.md, "URL
    inputs") and the model receives this object, a :class:`File` already on local disk:

    * ``name``: the argument's wire name;
    * ``filename``: the local path (deleted when the request ends);
    * ``content_type``: the type the remote server declared;
    * ``original_filename``: the last segment of the URL's path (data, never a path).

    ``Input(media_types=("image/*",))`` makes the server refuse other content types.
    """

    __slots__ = ()


async def fetch_url_files(params: ParamSet, kwargs: dict[str, Any], dest_dir: Path, policy: Any) -> dict[str, Any]:
    """``kwargs`` with the URL of every URL-file argument (``extra["fetch"]``) replaced by a fetched :class:`URLFile`.

    Fetches with :func:`modelaas.fetch.fetch` under ``policy`` (a ``FetchPolicy``) into
    ``dest_dir``; the caller deletes ``dest_dir``. Errors name the argument.
    """
    from modelaas.fetch import fetch  # httpx is imported only when a URL is fetched

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
                raise type(exc)(f"Argument {p.wire_name!r}: {exc.message}") from None
            files.append(URLFile(p.wire_name, str(got.path), got.content_type, original_name(str(url))))
        out[p.name] = files if p.is_array else files[0]
    return out


def original_name(url: str) -> str:
    """The last segment of the URL's path, percent-decoded: data for the model, never a path."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])
