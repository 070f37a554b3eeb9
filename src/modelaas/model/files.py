"""The object a model receives for an uploaded file."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import IO, Any, NamedTuple

_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,16}\Z", re.ASCII)


def safe_suffix(name: str) -> str:
    """The extension of a client's file name (``.png``), if it is a plain one; else ``""``.

    Files are stored under names of the server's own; only this suffix is kept from the
    client's, so that models which look at a file's extension still see it.
    """
    found = _SUFFIX.search(name)
    return found.group() if found else ""


class File(NamedTuple):
    """An uploaded file, already on local disk.

    The same four attributes as DEEPaaS's ``UploadedFile`` (so existing models that read
    ``arg.filename`` keep working), plus conveniences for typed models. The file lives in
    the server's upload spool and is deleted when the request ends.
    """

    name: str
    """The form field the file was sent in."""
    filename: str
    """Path of the uploaded file on local disk."""
    content_type: str
    """The content type the client declared."""
    original_filename: str
    """The client's own name for the file: data only, never used as a path."""

    @property
    def path(self) -> Path:
        return Path(self.filename)

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def open(self, mode: str = "rb") -> IO[bytes]:
        if mode not in ("r", "rb"):
            raise ValueError("uploaded files are read-only")
        return open(self.filename, "rb")

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


# ------------------------------------------------------------------ DEEPaaS's class
_EXTRAS = ("path", "size", "open", "read_bytes")
_UNRESOLVED: Any = object()
_deepaas_class: Any = _UNRESOLVED


def deepaas_file_class() -> Any:
    """DEEPaaS's own ``UploadedFile`` with modelaas's extras, when ``deepaas`` is importable.

    Real v2 models check ``isinstance(arg, deepaas.model.v2.wrapper.UploadedFile)``; the
    files they receive are instances of a subclass of it that also has :class:`File`'s
    ``path``, ``size``, ``open()`` and ``read_bytes()``. None when DEEPaaS is not installed
    (or cannot be imported), and then models get :class:`File`. Looked up once per process.
    """
    global _deepaas_class
    if _deepaas_class is _UNRESOLVED:
        _deepaas_class = _resolve_deepaas_class()
    return _deepaas_class


def _resolve_deepaas_class() -> Any:
    import importlib.util

    try:
        if importlib.util.find_spec("deepaas") is None:
            return None
        from deepaas.model.v2.wrapper import UploadedFile as base
    except Exception as exc:  # an installed DEEPaaS that does not import: say so, serve anyway
        logging.getLogger("modelaas.model").warning(
            "deepaas is installed but its UploadedFile cannot be imported (%s: %s); models receive "
            "modelaas.File objects instead.",
            type(exc).__name__,
            exc,
        )
        return None
    extras = {name: File.__dict__[name] for name in _EXTRAS if not hasattr(base, name)}
    if "original_filename" not in base._fields:  # DEEPaaS releases before the field existed
        extras["original_filename"] = property(lambda self: "")
    doc = "DEEPaaS's ``UploadedFile`` (for models that check it), with modelaas's :class:`File` extras."
    return type("UploadedFile", (base,), {"__slots__": (), "__doc__": doc, "__module__": __name__, **extras})


def as_deepaas_files(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments with every :class:`File` (alone or in a list) as DEEPaaS's class, if installed."""
    cls = deepaas_file_class()
    if cls is None:
        return kwargs

    def convert(value: Any) -> Any:
        if isinstance(value, File):
            return cls(**{f: getattr(value, f) for f in cls._fields if f in File._fields})
        if isinstance(value, list) and any(isinstance(v, File) for v in value):
            return [convert(v) for v in value]
        return value

    return {key: convert(value) for key, value in kwargs.items()}
