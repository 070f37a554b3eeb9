"""JSON schema for parameters of the IR (read by the API docs and the web UI)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from modelaas.model.jsonable import to_jsonable
from modelaas.model.params import Kind, Param

_BASE: dict[Kind, dict[str, Any]] = {
    Kind.STRING: {"type": "string"},
    Kind.INTEGER: {"type": "integer"},
    Kind.NUMBER: {"type": "number"},
    Kind.BOOLEAN: {"type": "boolean"},
    Kind.OBJECT: {"type": "object"},
    Kind.DATE: {"type": "string", "format": "date"},
    Kind.DATETIME: {"type": "string", "format": "date-time"},
    Kind.FILE: {"type": "string", "format": "binary"},
    Kind.ANY: {},
}


def kind_schema(kind: Kind | None) -> dict[str, Any]:
    return dict(_BASE.get(kind or Kind.ANY, {}))


def tensor_schema(datatype: str, shape: tuple[int, ...]) -> dict[str, Any]:
    """Nested arrays, one level per axis (``minItems``/``maxItems`` for fixed sizes), of the datatype's values."""
    item: dict[str, Any]
    if datatype == "BOOL":
        item = {"type": "boolean"}
    elif datatype.startswith(("INT", "UINT")):
        item = {"type": "integer"}
    elif datatype == "BYTES":
        item = {"type": "string"}
    else:
        item = {"type": "number"}
    schema = item
    for size in reversed(shape):
        schema = {"type": "array", "items": schema}
        if size >= 0:
            schema["minItems"] = schema["maxItems"] = size
    return schema


def param_schema(param: Param) -> dict[str, Any]:
    """The JSON schema (OpenAPI 3.1 dialect) of one argument."""
    spec = param.tensor
    schema: dict[str, Any]
    if spec is not None:
        schema = tensor_schema(spec.datatype, spec.shape)
        shown = " x ".join("any" if d < 0 else str(d) for d in spec.shape)
        schema["description"] = (f"{param.description} " if param.description else "") + (
            f"A {spec.datatype} tensor of shape {shown}, as nested arrays."
        )
        return schema
    if param.kind is Kind.ARRAY:
        schema = {"type": "array", "items": kind_schema(param.item)}
        if param.min_length is not None:
            schema["minItems"] = param.min_length
        if param.max_length is not None:
            schema["maxItems"] = param.max_length
    else:
        schema = kind_schema(param.kind)
        if param.kind is Kind.STRING:
            if param.min_length is not None:
                schema["minLength"] = param.min_length
            if param.max_length is not None:
                schema["maxLength"] = param.max_length
    if param.choices is not None:  # checked: an enum; else the usual values, as examples
        target = schema["items"] if param.kind is Kind.ARRAY else schema
        target["enum" if param.choices_checked else "examples"] = [to_jsonable(c) for c in param.choices]
    if _finite(param.minimum):
        schema["exclusiveMinimum" if param.exclusive_minimum else "minimum"] = param.minimum
    if _finite(param.maximum):
        schema["exclusiveMaximum" if param.exclusive_maximum else "maximum"] = param.maximum
    if param.has_default and param.kind is not Kind.FILE:
        try:
            default = to_jsonable(param.default)
            json.dumps(default, allow_nan=False)
            schema["default"] = default
        except Exception:  # an odd default (NaN, an object) only loses its display
            pass
    if param.description:
        schema["description"] = param.description
    if param.extra.get("fetch"):  # a URL the server fetches (URLFile)
        (schema["items"] if param.kind is Kind.ARRAY else schema)["format"] = "uri"
    fmt = param.extra.get("format")
    if isinstance(fmt, str) and fmt and not param.is_file:  # DEEPaaS metadata ("password"): a list's goes to its items
        (schema["items"] if param.kind is Kind.ARRAY else schema).setdefault("format", fmt)
    if param.media_types and param.is_file:
        schema["contentMediaType"] = param.media_types[0]
    for key in ("example", "examples"):
        if key in param.extra:
            schema[key] = to_jsonable(param.extra[key])
    return schema


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def object_schema(params: Iterable[Param], *, include_files: bool = True) -> dict[str, Any]:
    """An object schema with one property per argument."""
    props: dict[str, Any] = {}
    required: list[str] = []
    for p in params:
        if p.is_file and not include_files:
            continue
        props[p.wire_name] = param_schema(p)
        if p.required:
            required.append(p.wire_name)
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema
