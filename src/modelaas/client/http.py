"""A Python client for modelaas (and DEEPaaS) servers, built on httpx.

::

    from modelaas import Client

    with Client("http://127.0.0.1:5000") as client:
        client.models()                                  # [{"id": ..., "name": ..., ...}]
        client.predict("my-model", image="cat.jpg", top_k=3)
        job = client.train("my-model", epochs=10)
        for event in job.events():                       # state / progress / log events
            print(event.kind, event.data)
        job.wait()["result"]["output"]

Arguments are sent the way browsers and ``curl`` send them: ``pathlib.Path`` objects,
open binary files (anything with ``.read``) and ``(filename, bytes_or_file[, content_type])``
tuples are uploaded as files, streamed from disk (multipart); everything else becomes a
form field (urlencoded when there is no file). For an argument the model declares as a
file (the client reads the server's OpenAPI document once to know), a ``str`` or
``os.PathLike`` naming an existing file is that file; any other value raises
:class:`TypeError`. Lists are sent as repeated keys, dicts as
JSON text, booleans as ``true``/``false``; ``None`` and empty lists are not sent, so the
server's default applies.

Every error answer raises the matching class of :mod:`modelaas.errors`, with the server's
status, message and ``request_id``; a server that cannot be reached raises :class:`~modelaas.errors.ServerUnreachable`
(the ``httpx`` exception is its ``__cause__``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import mimetypes
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

import httpx

from modelaas.client.jobs import Event, Job, job_path, model_path
from modelaas.client.transport import Transport
from modelaas.errors import ModelaasError, ModelNotFound, ServerUnreachable
from modelaas.runtime.media import is_json_media

__all__ = ["Client", "Event", "Job"]

DEFAULT_TIMEOUT = 60.0
JOBS_PAGE = 1000
"""Job records asked for at once by :meth:`Client.jobs`."""


class Client:
    """A synchronous client for one server.

    ``url`` is the server's root, base path included (``http://host:5000/base``).
    ``token`` is sent as ``Authorization: Bearer <token>`` on every request. ``timeout``
    (seconds, ``None`` for none) bounds connecting and each read: a prediction that takes
    longer than that raises. ``transport`` replaces httpx's network transport (tests).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._transport = Transport(url, token, timeout, transport=transport)
        self.url = self._transport.url
        self.timeout = timeout
        self._file_args: dict[str, frozenset[str]] | None = None

    # ---------------------------------------------------------------- lifecycle
    @property
    def transport(self) -> Transport:
        """The HTTP plumbing this client and its job handles share."""
        return self._transport

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # ---------------------------------------------------------------- models
    def models(self) -> list[dict[str, Any]]:
        """The served models' entries (``id``, ``name``, ``links`` and their metadata)."""
        return list(self._transport.request("GET", "v2/models/").json()["models"])

    def model(self, name: str) -> dict[str, Any]:
        """One model's entry; :class:`~modelaas.errors.ModelNotFound` if it is not served."""
        answer: dict[str, Any] = self._transport.request(
            "GET", model_path(name), model=name, missing=ModelNotFound
        ).json()
        return answer

    def openapi(self) -> dict[str, Any]:
        """The server's OpenAPI document (every model's arguments and answers)."""
        document: dict[str, Any] = self._transport.request("GET", "openapi.json").json()
        return document

    def predict(self, model: str, /, accept: str | None = None, **args: Any) -> Any:
        """Run a prediction and answer what the server answered.

        A JSON answer is returned decoded, exactly as sent: the ``{"status", "predictions"}``
        envelope, or the object a model with an output schema returns. Any other answer
        (``accept="image/png"``, ``"text/plain"``, a PDF...) is returned as ``bytes``.
        ``accept`` is sent as the ``Accept`` header (models that declare an ``accept``
        argument pick their answer type with it).
        """
        headers = {"Accept": accept} if accept is not None else {}
        with _encode(args, self._files_of(model, "predict")) as (fields, files):
            response = self._transport.request(
                "POST", model_path(model) + "predict/", model=model, data=fields, files=files, headers=headers
            )
        if is_json_media(response.headers.get("Content-Type", "")):
            return response.json()
        return response.content

    # ---------------------------------------------------------------- training
    def train(self, model: str, /, **args: Any) -> Job:
        """Submit a training (arguments as for :meth:`predict`) and answer its handle at once."""
        with _encode(args, self._files_of(model, "train")) as (fields, files):
            response = self._transport.request(
                "POST", model_path(model) + "train/", model=model, data=fields, files=files
            )
        return Job(self._transport, model, response.json())

    def jobs(self, model: str, *, page: int = JOBS_PAGE) -> list[Job]:
        """The model's training jobs, oldest first (fetched ``page`` at a time from a modelaas
        server; a DEEPaaS server answers all of them at once)."""
        records: list[Any] = []
        while True:
            response = self._transport.request(
                "GET", model_path(model) + "train/", model=model, params={"limit": page, "offset": len(records)}
            )
            batch = response.json()
            records += batch
            total = response.headers.get("X-Total-Count", "")
            if not batch or not total.isdigit() or len(records) >= int(total):
                return [Job(self._transport, model, record) for record in records]

    def job(self, model: str, id: str) -> Job:
        """One training job; :class:`~modelaas.errors.JobNotFound` if there is none with this id."""
        return Job(
            self._transport, model, self._transport.request("GET", job_path(model, id), model=model, job=id).json()
        )

    # ---------------------------------------------------------------- versions
    def versions(self, model: str) -> dict[str, Any]:
        """``{"model", "active", "generation", "versions": [record, ...]}`` (newest first)."""
        answer: dict[str, Any] = self._transport.request("GET", model_path(model) + "versions/", model=model).json()
        return answer

    def list_versions(self, model: str) -> dict[str, Any]:
        """The same as :meth:`versions`."""
        return self.versions(model)

    def register_version(
        self,
        model: str,
        *,
        job: str | None = None,
        archive: str | os.PathLike[str] | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Register a finished training (``job``: its id or a unique start) or an archive's files
        as a new version; its record."""
        if (job is None) == (archive is None):
            raise ValueError("Give job or archive (one of them).")
        path = model_path(model) + "versions/"
        if job is not None:
            body: dict[str, Any] = {"job": job, **({"description": description} if description else {})}
            response = self._transport.request("POST", path, model=model, json=body)
        else:
            assert archive is not None
            fields = {"description": description} if description else {}
            with open(archive, "rb") as fh:
                files = {"archive": (os.path.basename(os.fspath(archive)), fh, "application/octet-stream")}
                response = self._transport.request("POST", path, model=model, data=fields, files=files)
        record: dict[str, Any] = response.json()
        return record

    def activate_version(self, model: str, version: int) -> dict[str, Any]:
        """Serve ``version`` (every server follows); ``{"model", "active", "generation"}``."""
        path = f"{model_path(model)}versions/{int(version)}/activate"
        answer: dict[str, Any] = self._transport.request("POST", path, model=model).json()
        return answer

    def delete_version(self, model: str, version: int) -> None:
        """Remove a version that is not the active one."""
        self._transport.request("DELETE", f"{model_path(model)}versions/{int(version)}", model=model)

    def reload(self, model: str) -> dict[str, Any]:
        """Reload ``model`` in every server, one process at a time; ``{"model", "active", "generation"}``."""
        answer: dict[str, Any] = self._transport.request("POST", model_path(model) + "reload", model=model).json()
        return answer

    def _files_of(self, model: str, method: str) -> frozenset[str]:
        """The names of the file arguments of ``model``'s ``method`` (``predict``, ``train``),
        from the server's OpenAPI document, fetched once; none if the server has no document."""
        if self._file_args is None:
            document: dict[str, Any] = {}
            for path in ("openapi.json", "swagger.json"):  # modelaas; DEEPaaS
                try:
                    document = self._transport.request("GET", path).json()
                    break
                except ServerUnreachable:
                    raise
                except (ModelaasError, ValueError):
                    continue
            self._file_args = file_arguments(document if isinstance(document, Mapping) else {})
        return self._file_args.get(f"{model}/{method}", frozenset())


# -------------------------------------------------------------------- arguments
FileSpec = tuple[str, Any, str]


_METHOD_PATH = re.compile(r"/v2/models/([^/]+)/(predict|train)/?$")


def file_arguments(document: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """``{"<model>/<predict|train>": names of its file arguments}`` from an OpenAPI 3 document
    (multipart properties of ``format: binary``) or a Swagger 2 one (``type: file`` parameters)."""
    out: dict[str, frozenset[str]] = {}
    paths = document.get("paths")
    for path, operations in (paths if isinstance(paths, Mapping) else {}).items():
        found = _METHOD_PATH.search(str(path))
        if found is None or not isinstance(operations, Mapping) or not isinstance(operations.get("post"), Mapping):
            continue
        post = operations["post"]
        names = set()
        schema = post.get("requestBody", {}).get("content", {}).get("multipart/form-data", {}).get("schema", {})
        for name, prop in (schema.get("properties") or {}).items():
            if _is_binary(prop) or (isinstance(prop, Mapping) and _is_binary(prop.get("items"))):
                names.add(name)
        for param in post.get("parameters") or ():
            if isinstance(param, Mapping) and (param.get("type") == "file" or _is_binary(param.get("items"))):
                names.add(str(param.get("name")))
        out[f"{unquote(found.group(1))}/{found.group(2)}"] = frozenset(names)
    return out


def _is_binary(schema: Any) -> bool:
    return isinstance(schema, Mapping) and (schema.get("format") == "binary" or schema.get("type") == "file")


@contextlib.contextmanager
def _encode(
    args: Mapping[str, Any], file_names: frozenset[str] = frozenset()
) -> Iterator[tuple[dict[str, list[str | bytes]], list[tuple[str, FileSpec]]]]:
    """Split arguments into form fields and file parts; files given as paths are opened
    here and closed when the request is done (httpx streams them from disk).

    ``file_names`` are the arguments the model declares as files (by wire name; a Python
    name given for a ``-``-named one counts too): their values must be files.
    """
    fields: dict[str, list[str | bytes]] = {}
    files: list[tuple[str, FileSpec]] = []
    declared = {n.replace("-", "_") for n in file_names}
    with contextlib.ExitStack() as stack:
        for name, value in args.items():
            is_file = name in file_names or name.replace("-", "_") in declared
            for item in value if isinstance(value, list) or _is_plain_tuple(value) else [value]:
                if item is None:
                    continue
                spec = _file_spec(name, _as_file(name, item) if is_file else item, stack)
                if spec is not None:
                    files.append((name, spec))
                else:
                    fields.setdefault(name, []).append(_field_text(item))
        yield fields, files


def _is_plain_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and not _is_file_tuple(value)


def _is_file_tuple(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) in (2, 3)
        and isinstance(value[0], str)
        and (isinstance(value[1], (bytes, bytearray)) or hasattr(value[1], "read"))
        and (len(value) == 2 or isinstance(value[2], str))
    )


def _as_file(name: str, value: Any) -> Any:
    """A declared file argument's value as something :func:`_file_spec` uploads, or TypeError."""
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, Path):
        path = Path(value)
        if path.is_file():
            return path
    elif isinstance(value, Path) or _is_file_tuple(value) or hasattr(value, "read"):
        return value
    raise TypeError(
        f"Argument {name!r} is a file: pass the path of an existing file (str or pathlib.Path), "
        f"an open binary file, or a (filename, bytes) tuple; got {_shown(value)}."
    )


def _shown(value: Any) -> str:
    if isinstance(value, (str, os.PathLike)):
        return f"{os.fspath(value)!r}, which is not a file"
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _file_spec(name: str, value: Any, stack: contextlib.ExitStack) -> FileSpec | None:
    if isinstance(value, Path):
        handle: IO[bytes] = stack.enter_context(value.open("rb"))
        return (value.name, handle, _guess_type(value.name))
    if _is_file_tuple(value):
        filename = value[0]
        return (filename, value[1], value[2] if len(value) == 3 else _guess_type(filename))
    if hasattr(value, "read"):
        raw_name = getattr(value, "name", None)
        filename = Path(raw_name).name if isinstance(raw_name, str) and raw_name else name
        return (filename, value, _guess_type(filename))
    return None


def _guess_type(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _field_text(value: Any) -> str | bytes:
    if isinstance(value, (bytes, str)):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)
