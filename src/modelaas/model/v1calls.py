"""How v1 (``deepaas.model``) models are called: the two forms found in the wild.

* **dict form** (DEEPaaS 0.5 to 1.3, the ``/v1`` routes; what 2019 models are written
  for): ``predict_data(args)`` and ``predict_url(args)`` get **one dict** holding
  ``files`` (objects with werkzeug's ``FileStorage`` surface), ``urls`` and the
  ``get_test_args()`` values; ``predict_file`` is never called (the v1 model template
  generated a stub for it).
* **seed form** (the project's seed document): ``predict_file(path, **kwargs)``,
  ``predict_data(data, **kwargs)`` with the file's bytes, ``predict_url(url, *args)``,
  one call per file or URL.

Each function is read from its signature: one that takes a single parameter, or no named
one but ``*args`` (with or without ``**kwargs``), takes the dict; one with a named first
parameter and ``**kwargs`` or more (``data, **kwargs``, ``url, *args``) follows the seed
form. The ``--v1-call-form`` setting forces either.
"""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import Callable
from typing import IO, Any

from modelaas.model.files import File

FORMS = ("auto", "dict", "seed")


def takes_one_dict(func: Callable[..., Any]) -> bool:
    """Whether ``func`` has the dict form's shape: ``f(args)``, ``f(*args)`` or ``f(*args, **kwargs)``.

    DEEPaaS 1.x passed the dict positionally and never a keyword, and 2019 models took it
    as ``args[0]`` behind ``*args`` with or without ``**kwargs``; a named first parameter
    with ``**kwargs`` (``data, **kwargs``) is the seed's.
    """
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # a builtin or C function: nothing to read; the seed form
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    star = any(p.kind is p.VAR_POSITIONAL for p in params)
    if star and not positional:
        return True
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return False
    return len(positional) == 1 and not star


def uses_dict_form(func: Callable[..., Any] | None, forced: str) -> bool:
    if func is None:
        return False
    if forced == "dict":
        return True
    if forced == "seed":
        return False
    return takes_one_dict(func)


def takes_no_arguments(func: Callable[..., Any]) -> bool:
    """``train()`` of DEEPaaS 0.1 to 0.4 models: nothing positional to give it."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return not any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


def call_seed(func: Callable[..., Any], first: Any, test_args: dict[str, Any]) -> Any:
    """A seed-form call: the test args as keywords (``f(x, **kwargs)``), else in their order (``f(x, *args)``)."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return func(first, **test_args)
    if any(p.kind is p.VAR_KEYWORD for p in params) or not test_args:
        return func(first, **test_args)
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return func(first, *test_args.values())
    named = {p.name for p in params[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return func(first, **{k: v for k, v in test_args.items() if k in named})


class UploadedData:
    """An uploaded file as DEEPaaS 0.5 to 1.3 handed it to v1 models (werkzeug's ``FileStorage`` surface).

    ``filename`` is the client's file name (not a path: that is :attr:`path`); ``read()``,
    ``save(dst)``, ``stream``, and any other attribute of the open file (``seek``,
    ``readline``...), so that ``PIL.Image.open(upload)`` works as it did.
    """

    def __init__(self, upload: File) -> None:
        self.name = upload.name
        self.filename = upload.original_filename
        self.content_type = upload.content_type
        self.mimetype = upload.content_type.split(";")[0].strip().lower()
        self.path = upload.filename
        """Where the upload lies on local disk (a modelaas extra)."""
        self.stream: IO[bytes] = open(upload.filename, "rb")  # noqa: SIM115 - closed by close()
        self.file = self.stream  # aiohttp's FileField name for it (the dict's "data" entry)

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)

    def save(self, dst: str | os.PathLike[str] | IO[bytes], buffer_size: int = 16384) -> None:
        """Copy the upload to a path or an open binary file, as ``FileStorage.save`` does."""
        if isinstance(dst, (str, os.PathLike)):
            with open(dst, "wb") as out:
                shutil.copyfileobj(self.stream, out, buffer_size)
        else:
            shutil.copyfileobj(self.stream, dst, buffer_size)

    def close(self) -> None:
        self.stream.close()

    def __getattr__(self, name: str) -> Any:
        if name == "stream":  # not yet set: no recursion
            raise AttributeError(name)
        return getattr(self.stream, name)

    def __iter__(self) -> Any:
        return iter(self.stream)

    def __bool__(self) -> bool:
        return bool(self.filename)

    def __repr__(self) -> str:
        return f"<UploadedData: {self.filename!r} ({self.content_type!r})>"


def dict_for_files(uploads: list[File], test_args: dict[str, Any]) -> tuple[dict[str, Any], list[UploadedData]]:
    """The one dict DEEPaaS 1.x passed to ``predict_data`` (and the opened uploads, to close)."""
    opened: list[UploadedData] = []
    try:
        for upload in uploads:
            opened.append(UploadedData(upload))
    except BaseException:
        for o in opened:
            o.close()
        raise
    return {**test_args, "data": opened[0], "files": opened, "urls": None}, opened


def dict_for_urls(urls: list[str], test_args: dict[str, Any]) -> dict[str, Any]:
    """The one dict DEEPaaS 1.x passed to ``predict_url``."""
    return {**test_args, "url": list(urls), "urls": list(urls)}
