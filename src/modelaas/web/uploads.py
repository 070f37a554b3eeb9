"""Read an ASGI request body without holding file uploads in memory.

``read_body`` works on the raw ASGI ``receive`` callable: multipart file parts stream to
a per-request spool directory as the chunks arrive, form fields and JSON are kept in
memory under ``max_field_size``, and the whole body is bounded by ``max_body``. Whatever
goes wrong, nothing written for the request is left on disk. A JSON body nested deeper
than ``JSON_MAX_DEPTH`` levels is refused (400) without recursing into it.

The time a client may take to send the body is bounded one level up, on the ``receive``
channel itself (:class:`modelaas.web.middleware.RequestContext`, ``body_timeout``): 408.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote_to_bytes

from python_multipart import MultipartParser, QuerystringParser
from python_multipart.exceptions import FormParserError

from modelaas.errors import BadRequest, ClientError, PayloadTooLarge
from modelaas.model.files import File, safe_suffix
from modelaas.runtime.media import is_json_media
from modelaas.telemetry import metrics

Receive = Callable[[], Awaitable[Mapping[str, Any]]]

# One ``; key=value`` parameter of a header; the value is a quoted-string or a bare token.
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))', re.DOTALL)
_ESCAPE = re.compile(r'\\([\\"])')
JSON_MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a JSON body."""
MAX_PART_HEADERS = 16 * 1024
"""Largest headers of one multipart part, in bytes (they are held in memory while parsed)."""


class ClientDisconnected(ClientError):
    status = 400

    def __init__(self, message: str = "Client disconnected before the body was complete.") -> None:
        super().__init__(message)


@dataclass
class RequestBody:
    """What a request carried: form fields, spooled files, or a JSON document."""

    fields: list[tuple[str, str]] = field(default_factory=list)
    files: list[tuple[str, File]] = field(default_factory=list)
    json: Any = None
    spool_dir: Path | None = None

    def cleanup(self) -> None:
        """Delete every spooled file and the spool directory. Safe to call more than once."""
        for _, upload in self.files:
            try:
                os.unlink(upload.filename)
            except OSError:
                pass
        if self.spool_dir is not None:
            shutil.rmtree(self.spool_dir, ignore_errors=True)


def _options(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type; key=value; ...`` into the lower-cased type and its parameters (first one wins)."""
    head, sep, rest = value.partition(";")
    params: dict[str, str] = {}
    if sep:
        for match in _PARAM.finditer(";" + rest):
            key, quoted, bare = match.groups()
            if quoted is not None and "\\" in quoted:
                quoted = _ESCAPE.sub(r"\1", quoted)
            params.setdefault(key.lower(), bare.strip() if quoted is None else quoted)
    return head.strip().lower(), params


def _too_large(what: str, limit: int, flag: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"{what} is larger than the limit of {limit} bytes; raise the limit with {flag}.")


class _Sink:
    """Where the body chunks of one content type go: feed() each chunk, then finish() or abort()."""

    handlers: tuple[str, ...] = ()  # the on_* methods, python_multipart callbacks

    def __init_subclass__(cls) -> None:
        cls.handlers = tuple(name for name in vars(cls) if name.startswith("on_"))

    def feed(self, chunk: bytes) -> None: ...
    def finish(self) -> None: ...
    def abort(self) -> None: ...

    def callbacks(self) -> Any:
        return {name: getattr(self, name) for name in self.handlers}


class _Multipart(_Sink):
    """Callbacks for python_multipart's MultipartParser: file parts go to disk, others to fields."""

    def __init__(self, body: RequestBody, boundary: str, spool_root: Path, max_parts: int, max_field_size: int):
        self.body, self.spool_root = body, spool_root
        self.max_parts, self.max_field_size = max_parts, max_field_size
        self.parts = self.header_bytes = 0
        self.started = self.done = False
        self.hname, self.hvalue = bytearray(), bytearray()
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.value: bytearray | None = None  # the current non-file part
        self.out: IO[bytes] | None = None  # the current file part ...
        self.file: File | None = None  # ... and what it becomes
        try:
            self.parser = MultipartParser(boundary.encode("latin-1"), self.callbacks())
        except (FormParserError, UnicodeEncodeError) as exc:
            raise BadRequest(f"Malformed multipart body: bad boundary ({exc}).") from None

    def feed(self, chunk: bytes) -> None:
        self.started = True
        self.parser.write(chunk)

    def finish(self) -> None:
        # MultipartParser.finalize() does not check that the closing boundary was seen.
        if self.started and not self.done:
            raise BadRequest("Malformed multipart body: it ended before the closing boundary.")

    def abort(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.max_parts:
            raise BadRequest(f"Too many parts in the multipart body: limit {self.max_parts} (see --max-parts).")
        self.headers = {}
        self.header_bytes = 0

    def _count_header(self, size: int) -> None:
        self.header_bytes += size
        if self.header_bytes > MAX_PART_HEADERS:
            raise BadRequest(f"Malformed multipart body: a part's headers are larger than {MAX_PART_HEADERS} bytes.")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.hname += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.hvalue += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self.hname).lower()] = bytes(self.hvalue).strip()
        self.hname.clear()
        self.hvalue.clear()

    def on_headers_finished(self) -> None:
        _, params = _options(self.headers.get(b"content-disposition", b"").decode("utf-8", "replace"))
        self.name = params.get("name", "")
        filename = params.get("filename")
        if filename is None:
            self.value = bytearray()
        elif filename:  # an empty filename is an empty file input: no file at all
            self._open(filename)

    def _open(self, original: str) -> None:
        if self.body.spool_dir is None:
            self.spool_root.mkdir(parents=True, exist_ok=True)
            self.body.spool_dir = Path(os.path.abspath(tempfile.mkdtemp(dir=self.spool_root, prefix="req-")))
        path = os.path.join(self.body.spool_dir, secrets.token_hex(16) + safe_suffix(original))
        self.out = open(path, "xb")  # noqa: SIM115 - closed in on_part_end() or abort()
        ctype = self.headers.get(b"content-type", b"").decode("latin-1") or "application/octet-stream"
        self.file = File(self.name, path, ctype, original)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.out is not None:
            self.out.write(memoryview(data)[start:end])
        elif self.value is not None:
            if len(self.value) + end - start > self.max_field_size:
                raise _too_large(f"Form field {self.name!r}", self.max_field_size, "--max-field-size")
            self.value += memoryview(data)[start:end]

    def on_part_end(self) -> None:
        if self.out is not None and self.file is not None:
            self.abort()
            self.body.files.append((self.name, self.file))
        elif self.value is not None:
            self.body.fields.append((self.name, self.value.decode("utf-8", "replace")))
        self.value = self.file = None

    def on_end(self) -> None:
        self.done = True


def _unquote(raw: bytearray) -> str:
    return unquote_to_bytes(bytes(raw).replace(b"+", b" ")).decode("utf-8", "replace")


class _UrlEncoded(_Sink):
    """Callbacks for python_multipart's QuerystringParser; the whole form is bounded by max_field_size."""

    def __init__(self, body: RequestBody, max_parts: int, max_field_size: int) -> None:
        self.body, self.max_parts, self.max_field_size = body, max_parts, max_field_size
        self.size = 0
        self.name, self.value = bytearray(), bytearray()
        self.parser = QuerystringParser(self.callbacks())

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_field_size:
            raise _too_large("The url-encoded form", self.max_field_size, "--max-field-size")
        self.parser.write(chunk)

    def finish(self) -> None:
        self.parser.finalize()

    def on_field_name(self, data: bytes, start: int, end: int) -> None:
        self.name += data[start:end]

    def on_field_data(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def on_field_end(self) -> None:
        if len(self.body.fields) >= self.max_parts:
            raise BadRequest(f"Too many fields in the form: limit {self.max_parts} (see --max-parts).")
        self.body.fields.append((_unquote(self.name), _unquote(self.value)))
        self.name.clear()
        self.value.clear()


def _json_kind(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return "a number"
    return "a string" if isinstance(value, str) else "an array"


def json_too_deep(value: Any, limit: int = JSON_MAX_DEPTH) -> bool:
    """Whether ``value`` (parsed JSON) nests arrays and objects deeper than ``limit`` levels.

    Walks with an explicit stack, so no depth of input can exhaust Python's recursion limit.
    """
    stack = [(value, 1)] if isinstance(value, (list, dict)) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return False


def load_json(text: str | bytes, *, what: str, limit: int = JSON_MAX_DEPTH) -> Any:
    """Parse JSON text; :class:`BadRequest` if it is invalid or nested deeper than ``limit``."""
    too_deep = f"{what} is not valid JSON for this server: it nests arrays and objects more than {limit} deep."
    try:
        value = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except RecursionError:  # deeper than the interpreter's recursion limit: far too deep anyway
        raise BadRequest(too_deep) from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise BadRequest(f"{what} is not valid JSON: {exc}") from None
    if json_too_deep(value, limit):
        raise BadRequest(too_deep)
    return value


class _Json(_Sink):
    def __init__(self, body: RequestBody, max_field_size: int, max_depth: int) -> None:
        self.body, self.max_field_size, self.max_depth = body, max_field_size, max_depth
        self.raw = bytearray()

    def feed(self, chunk: bytes) -> None:
        if len(self.raw) + len(chunk) > self.max_field_size:
            raise _too_large("The JSON body", self.max_field_size, "--max-field-size")
        self.raw += chunk

    def finish(self) -> None:
        if self.raw:
            value = load_json(bytes(self.raw), what="Request body", limit=self.max_depth)
            if not isinstance(value, dict):
                raise BadRequest(
                    f'A JSON request body must be an object of arguments ({{"name": value, ...}}), '
                    f"not {_json_kind(value)}."
                )
            self.body.json = value


async def read_body(
    receive: Receive,
    headers: Mapping[str, str],
    *,
    spool_root: Path,
    max_body: int,
    max_parts: int,
    max_field_size: int,
    max_json_depth: int = JSON_MAX_DEPTH,
) -> RequestBody:
    """Read the whole request body; ``headers`` has lower-case names. The caller must call ``cleanup()``."""
    declared = headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > max_body
        except ValueError:
            raise BadRequest(f"Invalid Content-Length header: {declared!r}.") from None
        if too_big:
            raise _too_large("Request body", max_body, "--client-max-size")

    body = RequestBody()
    mime, params = _options(headers.get("content-type", ""))
    sink = _Sink()  # anything else is drained and ignored
    if mime == "multipart/form-data":
        if not params.get("boundary"):
            raise BadRequest("Malformed multipart body: the Content-Type has no boundary parameter.")
        sink = _Multipart(body, params["boundary"], spool_root, max_parts, max_field_size)
    elif mime == "application/x-www-form-urlencoded":
        sink = _UrlEncoded(body, max_parts, max_field_size)
    elif is_json_media(mime):
        sink = _Json(body, max_field_size, max_json_depth)

    try:
        received, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            if chunk:
                received += len(chunk)
                if received > max_body:
                    raise _too_large("Request body", max_body, "--client-max-size")
                sink.feed(chunk)
        sink.finish()
        if isinstance(sink, _Multipart):
            metrics.current().uploaded(received)
    except BaseException as exc:
        sink.abort()
        body.cleanup()
        if isinstance(exc, FormParserError):
            raise BadRequest(f"Malformed multipart body: {exc}.") from None
        raise
    return body
