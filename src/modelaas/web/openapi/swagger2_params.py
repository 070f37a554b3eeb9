"""Swagger 2.0 pieces: a model's arguments as DEEPaaS documents them, and JSON schemas made 2.0 schemas.

:func:`parameters` reads the parameter IR (:mod:`modelaas.model.params`), the same description
the OpenAPI 3.1 request bodies come from, and writes one Swagger 2.0 parameter per argument
in the shapes DEEPaaS 2.6.0 serves, because DEEPaaS tooling (its web UI first) builds forms
from them:

* a file is ``in: formData, type: file``; an argument whose DEEPaaS metadata says
  ``location: form`` is ``in: formData``, and a scalar one that says ``location: headers`` is
  ``in: header``; every other argument is ``in: query`` (DEEPaaS's choice; modelaas also reads
  non-file arguments from form fields and from a JSON object body, which the operation's
  description says: Swagger 2.0 cannot offer a JSON body beside form data);
* lists are ``type: array`` with ``collectionFormat: multi`` (repeated keys); Swagger 2.0 has
  no object parameters, so a ``Dict`` argument, and one of no declared type, is a string
  (JSON text); dates are strings of format ``date``/``date-time``;
* ``enum``, ``default``, bounds, lengths, ``description`` and the ``format`` given in the
  field's metadata (``password``...) are kept; a default that breaks the argument's own
  constraints is left out rather than published as an example of an invalid value.

:func:`schema2` turns an OpenAPI 3.1 (JSON schema 2020-12) schema into a Swagger 2.0 one:
``$ref`` to ``#/definitions/``, a ``null`` type or option becomes ``x-nullable``, ``const``
an ``enum`` of one, ``examples`` an ``example``, numeric ``exclusiveMinimum``/``Maximum`` the
2.0 boolean form; an ``anyOf``/``oneOf`` of several non-null options cannot be said in 2.0
and becomes "any value" (its description kept); keywords 2.0 lacks are dropped.
"""

from __future__ import annotations

import json
import math
from typing import Any

from modelaas.model.jsonable import to_jsonable
from modelaas.model.params import Kind, Param, ParamSet

DEFINITIONS = "#/definitions/"
_COMPONENTS = "#/components/schemas/"
_HEADER_LOCATIONS = ("headers", "header")
_FORM_LOCATIONS = ("form", "formdata", "files")
_TYPES: dict[Kind, tuple[str, str | None]] = {
    Kind.STRING: ("string", None),
    Kind.INTEGER: ("integer", None),
    Kind.NUMBER: ("number", None),
    Kind.BOOLEAN: ("boolean", None),
    Kind.OBJECT: ("string", None),  # JSON text: Swagger 2.0 has no object parameters
    Kind.DATE: ("string", "date"),
    Kind.DATETIME: ("string", "date-time"),
    Kind.FILE: ("file", None),
    Kind.ANY: ("string", None),
    Kind.TENSOR: ("string", None),  # JSON text of nested arrays
}


# ----------------------------------------------------------------- parameters


def location(param: Param) -> str:
    """Where the Swagger 2.0 document says to send ``param``: ``formData``, ``header`` or ``query``."""
    where = (param.location or "").lower()
    if param.is_file or where in _FORM_LOCATIONS:
        return "formData"
    if where in _HEADER_LOCATIONS and not param.is_array and param.wire_name.lower() != "accept":
        return "header"
    return "query"


def reads_header(param: Param) -> bool:
    """Whether the server takes ``param`` from the request header of its name (documented ``in: header``)."""
    return location(param) == "header"


def parameters(params: ParamSet) -> list[dict[str, Any]]:
    """One Swagger 2.0 parameter per argument of ``params``, in their order."""
    return [parameter(p) for p in params]


def parameter(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"in": location(p), "name": p.wire_name, "required": p.required}
    if p.is_file:
        out["type"] = "file"
        if p.is_array:
            out["description"] = "Send one file part per file (the part repeated)."
    elif p.kind is Kind.OBJECT:
        out["type"] = "string"
        out["description"] = "A JSON object, as text."
    elif p.tensor is not None:
        out["type"] = "string"
        shape = list(p.tensor.shape)
        out["description"] = f"A {p.tensor.datatype} tensor of shape {shape}: nested JSON arrays, as text."
    elif p.is_array:
        out["type"] = "array"
        out["collectionFormat"] = "multi"
        item_type, item_format = _TYPES[p.item or Kind.ANY]
        items: dict[str, Any] = {"type": item_type}
        if item_format:
            items["format"] = item_format
        if p.choices is not None and p.item not in (Kind.OBJECT, Kind.ANY):
            items["enum"] = [to_jsonable(c) for c in p.choices]
        out["items"] = items
        if p.min_length is not None:
            out["minItems"] = p.min_length
        if p.max_length is not None:
            out["maxItems"] = p.max_length
    else:
        kind_type, kind_format = _TYPES[p.kind]
        out["type"] = kind_type
        if kind_format:
            out["format"] = kind_format
        if p.choices is not None:
            out["enum"] = [_as_type(to_jsonable(c), kind_type) for c in p.choices]
        if p.kind is Kind.STRING:
            if p.min_length is not None:
                out["minLength"] = p.min_length
            if p.max_length is not None:
                out["maxLength"] = p.max_length
        if p.kind in (Kind.INTEGER, Kind.NUMBER):
            _bounds(p, out)
    fmt = p.extra.get("format")
    if isinstance(fmt, str) and fmt and not p.is_file:
        (out["items"] if p.is_array else out)["format"] = fmt
    elif p.extra.get("fetch"):  # a URL the server fetches (URLFile)
        (out["items"] if p.is_array else out)["format"] = "uri"
    default = _default(p, out)
    if default is not _NONE:
        out["default"] = default
    if "example" in p.extra and not p.is_file:
        out["x-example"] = to_jsonable(p.extra["example"])
    if p.description:
        out["description"] = p.description + (f" {out['description']}" if "description" in out else "")
    return out


def _bounds(p: Param, out: dict[str, Any]) -> None:
    for value, key, exclusive in (
        (p.minimum, "minimum", p.exclusive_minimum),
        (p.maximum, "maximum", p.exclusive_maximum),
    ):
        if value is not None and math.isfinite(value):
            out[key] = value
            if exclusive:
                out["exclusiveM" + key[1:]] = True


_NONE: Any = object()


def _default(p: Param, out: dict[str, Any]) -> Any:
    """``p``'s default as the parameter's type says, or _NONE when it has none or it breaks the constraints."""
    if not p.has_default or p.is_file or p.default is None:
        return _NONE
    try:
        value = to_jsonable(p.default)
        json.dumps(value, allow_nan=False)
    except Exception:  # an odd default (NaN, an object) only loses its display
        return _NONE
    if out["type"] == "array":
        if not isinstance(value, list):
            return _NONE
        value = [_as_type(v, out["items"]["type"]) for v in value]
        return value if all(fits(v, out["items"]) for v in value) and fits(value, out) else _NONE
    value = _as_type(value, out["type"])
    return value if fits(value, out) else _NONE


def _as_type(value: Any, type_: str) -> Any:
    """A JSON value as a parameter of ``type_`` carries it: objects and others as JSON text for strings."""
    if type_ == "string" and not isinstance(value, str):
        return json.dumps(value)
    return value


def fits(value: Any, spec: dict[str, Any]) -> bool:
    """Whether ``value`` meets the type, enum, bounds and lengths of a parameter or items ``spec``."""
    type_ = spec.get("type")
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
    }
    if type_ in checks and not checks[type_](value):
        return False
    if "enum" in spec and value not in spec["enum"]:
        return False
    if type_ in ("integer", "number"):
        low, high = spec.get("minimum"), spec.get("maximum")
        if low is not None and (value < low or (value == low and spec.get("exclusiveMinimum"))):
            return False
        if high is not None and (value > high or (value == high and spec.get("exclusiveMaximum"))):
            return False
    sized = {"string": ("minLength", "maxLength"), "array": ("minItems", "maxItems")}.get(str(type_))
    if sized is not None:
        shortest, longest = spec.get(sized[0]), spec.get(sized[1])
        if (shortest is not None and len(value) < shortest) or (longest is not None and len(value) > longest):
            return False
    return True


# -------------------------------------------------------------------- schemas

_KEPT = frozenset(
    {
        "format",
        "title",
        "description",
        "default",
        "multipleOf",
        "maximum",
        "minimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "maxProperties",
        "minProperties",
        "enum",
        "readOnly",
        "example",
    }
)


def ref2(ref: str) -> str:
    """A 3.1 schema reference as a 2.0 one."""
    return DEFINITIONS + ref[len(_COMPONENTS) :] if ref.startswith(_COMPONENTS) else ref


def schema2(node: Any) -> dict[str, Any]:
    """An OpenAPI 3.1 schema as a Swagger 2.0 schema (see the module's docstring)."""
    if not isinstance(node, dict):  # true/false schemas: 2.0 only has "any value"
        return {}
    if isinstance(node.get("$ref"), str):
        out: dict[str, Any] = {"$ref": ref2(node["$ref"])}
        return out
    out = {key: value for key, value in node.items() if key in _KEPT or key.startswith("x-")}
    nullable = False
    kind = node.get("type")
    if isinstance(kind, list):
        named = [k for k in kind if k != "null"]
        nullable = len(named) < len(kind)
        if len(named) == 1:
            out["type"] = named[0]
    elif kind == "null":
        nullable = True
    elif isinstance(kind, str):
        out["type"] = kind
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if not isinstance(options, list):
            continue
        named = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null" and len(o) == 1)]
        nullable = nullable or len(named) < len(options)
        if len(named) == 1:
            for sub_key, value in schema2(named[0]).items():
                out.setdefault(sub_key, value)
    if "const" in node:
        out["enum"] = [node["const"]]
    if "example" not in out and isinstance(node.get("examples"), list) and node["examples"]:
        out["example"] = node["examples"][0]
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = node.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[bound] = value
            out[key] = True
    if isinstance(node.get("properties"), dict):
        out["properties"] = {name: schema2(sub) for name, sub in node["properties"].items()}
    if "items" in node:
        out["items"] = schema2(node["items"])
    extra = node.get("additionalProperties")
    if isinstance(extra, bool):
        out["additionalProperties"] = extra
    elif isinstance(extra, dict):
        out["additionalProperties"] = schema2(extra)
    if isinstance(node.get("allOf"), list):
        out["allOf"] = [schema2(sub) for sub in node["allOf"]]
    if isinstance(node.get("required"), list) and node["required"]:
        out["required"] = list(node["required"])
    if nullable:
        out["x-nullable"] = True
    return out
