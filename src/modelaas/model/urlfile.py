"""``URLFile``: an argument the client gives as a URL and the server fetches."""

from __future__ import annotations

from modelaas.model.files import File


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
