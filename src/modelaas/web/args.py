"""Raw argument values from a request, guided by the parameter description.

Non-file arguments are read from the query string, then form fields (urlencoded or
multipart), then a JSON object body; files from multipart parts. Arguments declared with
DEEPaaS's ``location: headers`` are read from the request header of their name first, as
DEEPaaS reads them (documented ``in: header`` in ``/swagger.json``), except ``accept``: the
``Accept`` header every client sends is only used, negotiated against its choices, when no
explicit value is given. An argument declared with an alias (a marshmallow ``data_key``,
``Input(alias=...)``) is also found under the model's own keyword for it. Lists come as repeated
keys or as one JSON array; objects as JSON text or JSON values. JSON text nested deeper
than ``JSON_MAX_DEPTH`` levels is refused (400), as in JSON bodies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from modelaas.errors import BadRequest, ValidationError
from modelaas.model.files import File
from modelaas.model.params import Kind, Param, ParamSet
from modelaas.web.uploads import JSON_MAX_DEPTH, json_too_deep


def collect(
    params: ParamSet,
    query: Iterable[tuple[str, str]],
    fields: Iterable[tuple[str, str]],
    files: Iterable[tuple[str, File]],
    json_body: Any,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> dict[str, Any]:
    """Gather each declared argument's raw value by wire name (undeclared ones are ignored).

    An argument with an alias (``top-k``) may also be given by the model's keyword for it
    (``top_k``), unless another argument has that name; giving both is refused (400).

    ``headers`` are the raw request headers (ASGI: lower-case names), read only for
    arguments declared in headers.
    """
    by_query = _group(query)
    by_form = _group(fields)
    by_file: dict[str, list[File]] = {}
    for name, upload in files:
        by_file.setdefault(name, []).append(upload)
    body = json_body if isinstance(json_body, Mapping) else {}

    raw: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for p in params:
        wire = p.wire_name
        name = _given_name(params, p, (by_query, by_form, by_file, body))
        if p.is_file:
            uploads = by_file.get(name)
            text = [v for v in by_query.get(name, []) + by_form.get(name, []) if v != ""]
            if uploads:
                raw[wire] = uploads if p.is_array else uploads[0]
            elif text or (name in body and body[name] not in (None, "")):
                errors[wire] = ["Must be a file upload (multipart/form-data)."]
            continue
        in_header = p.location in ("headers", "header")
        header = _header(headers, wire) if in_header else None
        if header is not None and wire.lower() != "accept":  # where DEEPaaS reads it: first
            raw[wire] = _from_header(p, header)
        elif name in by_query:
            raw[wire] = _from_text(p, by_query[name])
        elif name in by_form:
            raw[wire] = _from_text(p, by_form[name])
        elif name in body:
            raw[wire] = body[name]
        elif header is not None:  # accept: an explicit value wins over the Accept every client sends
            raw[wire] = _from_header(p, header)
    if errors:
        raise ValidationError(errors)
    return raw


def _given_name(params: ParamSet, param: Param, sources: Iterable[Mapping[str, Any]]) -> str:
    """The name the request gives ``param`` by: its wire name (an alias such as ``top-k``), or
    the model's own keyword (``top_k``) when that names no other argument; both at once is 400."""
    wire, own = param.wire_name, param.name
    if own == wire or params.get(own) is not None:
        return wire
    sources = list(sources)
    if not any(own in source for source in sources):
        return wire
    if any(wire in source for source in sources):
        raise BadRequest(f"Arguments {wire!r} and {own!r} are the same argument: give it once.")
    return own


def _header(headers: Iterable[tuple[bytes, bytes]], name: str) -> str | None:
    wanted = name.lower().encode("latin-1", "replace")
    for key, value in headers:
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


def _from_header(param: Param, value: str) -> Any:
    if param.wire_name.lower() == "accept" and param.choices:  # what to answer: negotiated, as predict does
        from modelaas.runtime.media import negotiate

        return negotiate(value, [str(c) for c in param.choices])
    return _from_text(param, [v.strip() for v in value.split(",")] if param.is_array else [value])


def _group(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def _from_text(param: Param, values: list[str]) -> Any:
    if param.is_array:
        if len(values) == 1 and values[0].lstrip().startswith("["):
            parsed = _json(param.wire_name, values[0])
            if isinstance(parsed, list):
                return parsed
        return values
    value = values[0]
    if param.wire_name.lower() == "accept":  # an empty value counts as not given: the first one given
        value = next((v for v in values if v != ""), "")
    if param.kind is Kind.TENSOR and value.lstrip().startswith("["):  # nested arrays, as JSON text
        parsed = _json(param.wire_name, value)
        return value if parsed is _INVALID else parsed
    if param.kind is Kind.OBJECT and value.lstrip().startswith("{"):
        parsed = _json(param.wire_name, value)
        return value if parsed is _INVALID else parsed
    return value


_INVALID: Any = object()


def _json(name: str, text: str) -> Any:
    """``text`` parsed as JSON, or _INVALID (then the text itself is validated); 400 if nested too deep."""
    too_deep = f"Argument {name!r} nests arrays and objects more than {JSON_MAX_DEPTH} deep."
    try:
        value = json.loads(text)
    except RecursionError:  # deeper than the interpreter's recursion limit: far too deep anyway
        raise BadRequest(too_deep) from None
    except ValueError:
        return _INVALID
    if json_too_deep(value):
        raise BadRequest(too_deep)
    return value
