"""The per-model part of the OpenAPI document: one predict operation per model.

Request bodies come from the model's parameter IR (:func:`modelaas.model.schema.object_schema`),
answers from its media types and declared output schema. Output schemas may bring JSON-schema
``$defs`` (pydantic does); they are moved into ``components/schemas`` under names that do not
clash with other models' and every ``$ref`` to them is rewritten.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from modelaas.fetch.destinations import PLAIN_URL_PATTERN
from modelaas.model.adapters import ModelAdapter
from modelaas.model.params import Kind, Param, ParamSet
from modelaas.model.schema import object_schema
from modelaas.runtime.media import JSON_MEDIA, is_json_media

SCHEMAS = "#/components/schemas/"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
BINARY = {"type": "string", "format": "binary"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMAS + name}


def component_name(text: str) -> str:
    """``text`` made a valid component key (letters, digits, ``.``, ``-``, ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text) or "_"


def unique_id(text: str, used: set[str]) -> str:
    """``text`` made an operation id (word characters) not in ``used``, and added to it."""
    base = re.sub(r"\W", "_", text)
    name, n = base, 2
    while name in used:
        name, n = f"{base}_{n}", n + 1
    used.add(name)
    return name


class Components:
    """The ``components/schemas`` being built, and output schemas already moved into it."""

    def __init__(self, schemas: dict[str, Any]) -> None:
        self.schemas = schemas
        self._outputs: dict[str, dict[str, Any] | None] = {}

    def output_schema(self, adapter: ModelAdapter) -> dict[str, Any] | None:
        """The JSON schema of ``adapter``'s declared output, its ``$defs`` hoisted (once per model)."""
        if adapter.name not in self._outputs:
            declared = adapter.output_schema
            schema = None
            if declared is not None:
                try:
                    schema = self.hoist(declared.json_schema(), adapter.name)
                except Exception:  # e.g. a pydantic field of an arbitrary type: still an answer
                    schema = {"description": "The model's declared output (its type has no JSON schema)."}
            self._outputs[adapter.name] = schema
        return self._outputs[adapter.name]

    def hoist(self, schema: dict[str, Any], owner: str) -> dict[str, Any]:
        """Move ``schema``'s ``$defs`` into the components; answer the schema with refs rewritten."""
        schema = dict(schema)
        defs: dict[str, Any] = schema.pop("$defs", None) or {}
        renamed: dict[str, str] = {}
        for name in defs:
            target = component_name(name)
            if target in self.schemas or target in renamed.values():
                target = component_name(f"{owner}.{name}")
                stem, n = target, 2
                while target in self.schemas or target in renamed.values():
                    target, n = f"{stem}{n}", n + 1
            renamed[name] = target
        for name, sub in defs.items():
            self.schemas[renamed[name]] = _rewrite_refs(sub, renamed)
        return _rewrite_refs(schema, renamed)


def _rewrite_refs(node: Any, renamed: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                for prefix in (SCHEMAS, "#/$defs/"):
                    if value.startswith(prefix) and value[len(prefix) :] in renamed:
                        value = SCHEMAS + renamed[value[len(prefix) :]]
                out[key] = value
            elif key == "$defs":
                continue  # nested definitions were hoisted from the top level only; none expected
            else:
                out[key] = _rewrite_refs(value, renamed)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renamed) for v in node]
    return node


# ------------------------------------------------------------------------ request


def request_body(params: ParamSet, *, v1: bool = False) -> dict[str, Any] | None:
    """The ``requestBody`` for ``params`` (``accept`` already removed), or None without params.

    Form and multipart schemas give required lists ``minItems: 1`` (an empty list is no
    repeated key, so it arrives as missing). ``v1``: the model's string arguments take any
    JSON value in a JSON body (see :func:`v1_json_value`).
    """
    if not len(params):
        return None
    schema = object_schema(params)
    encoding: dict[str, Any] = {}
    for p in params:
        if p.is_file and p.media_types:
            encoding[p.wire_name] = {"contentType": ", ".join(p.media_types)}
        elif p.kind in (Kind.OBJECT, Kind.TENSOR):
            encoding[p.wire_name] = {"contentType": JSON_MEDIA}
    form = {"schema": form_schema(schema, params), **({"encoding": encoding} if encoding else {})}
    if params.has_files:
        content = {MULTIPART: form}
        where = "Send the arguments as multipart/form-data: files as file parts, lists as repeated parts."
    else:
        json_schema = copy.deepcopy(schema)
        if v1:
            for p in params:
                if p.kind is Kind.STRING:
                    json_schema["properties"][p.wire_name] = v1_json_value(p, json_schema["properties"][p.wire_name])
        content = {JSON_MEDIA: {"schema": json_schema}, FORM: form, MULTIPART: copy.deepcopy(form)}
        where = (
            "Send the arguments as a JSON object, or as form fields (lists as repeated keys or one JSON array, "
            "objects as JSON text)."
        )
        if v1:
            where += (
                " The model receives every argument as a string: a string as it is, another JSON value as "
                "its JSON text."
            )
    return {
        "description": where + " Non-file arguments may also be given in the query string.",
        "required": any(p.required for p in params),
        "content": content,
    }


def form_schema(schema: dict[str, Any], params: ParamSet) -> dict[str, Any]:
    """``schema`` for form fields: a required list needs at least one item (repeated key)."""
    out = copy.deepcopy(schema)
    for p in params:
        if p.required and p.is_array:
            prop = out["properties"][p.wire_name]
            prop["minItems"] = max(prop.get("minItems", 0), 1)
    return out


def v1_json_value(param: Param, schema: dict[str, Any]) -> dict[str, Any]:
    """A v1 (string) argument in a JSON body: what the v1 validator takes (model/legacy.py).

    A string is kept; any other value becomes its JSON text (``json.dumps``). Choices are
    compared with that text, so a choice that is the JSON text of a value accepts the value too.
    """
    out = {key: value for key, value in schema.items() if key not in ("type", "enum", "minLength", "maxLength")}
    if param.choices is None:
        return out
    choices: list[Any] = list(param.choices)
    for choice in param.choices:
        try:
            value = json.loads(choice)
        except ValueError:
            continue
        if isinstance(value, str) or json.dumps(value) != choice or not _same_text_when_equal(value):
            continue
        choices.append(value)
    out["enum"] = choices
    return out


def _same_text_when_equal(value: Any) -> bool:
    """Whether every JSON value equal to ``value`` (as JSON schema compares) has its JSON text.

    Not so with a whole float (1.0 equals 1, but json.dumps(1) is "1") or an object of several
    keys (equal in any order, but json.dumps keeps the order).
    """
    if isinstance(value, float):
        return not value.is_integer()
    if isinstance(value, list):
        return all(_same_text_when_equal(v) for v in value)
    if isinstance(value, dict):
        return len(value) <= 1 and all(_same_text_when_equal(v) for v in value.values())
    return True


def v1_predict_schema(schema: dict[str, Any], *, urls_checked: bool) -> dict[str, Any]:
    """The v1 predict arguments: exactly one of ``data`` (files) and ``url`` (non-empty strings).

    An empty list is sent as nothing and an empty URL is dropped, so ``data`` needs an item
    and ``url`` a non-empty one to count. ``urls_checked``: the server checks the URLs before
    the model fetches them (only http and https URLs pass).
    """
    out = copy.deepcopy(schema)
    if urls_checked:
        out["properties"]["url"]["items"] = dict(URL_ITEM)
    out["not"] = copy.deepcopy(_BOTH_OR_NEITHER)
    return out


_DATA = {"required": ["data"], "properties": {"data": {"minItems": 1}}}
_URL = {"required": ["url"], "properties": {"url": {"contains": {"minLength": 1}}}}
_BOTH_OR_NEITHER = {
    "description": "Exactly one of data and url: not both, and not neither.",
    "anyOf": [{"allOf": [_DATA, _URL]}, {"not": {"anyOf": [_DATA, _URL]}}],
}


URL_ITEM = {
    "type": "string",
    "pattern": PLAIN_URL_PATTERN,  # an http(s) URL of a named host, or empty (dropped)
    "description": (
        "An http or https URL of a host name or dotted IPv4 address (no user info, printable ASCII: "
        "percent-encode the rest). A URL whose host is not a public address is refused (400)."
    ),
}


def accept_parameter(adapter: ModelAdapter) -> dict[str, Any]:
    """The ``accept`` argument, documented where a client may put it besides the ``Accept`` header."""
    media = list(adapter.media_types)
    accept = adapter.predict_params.get("accept") if adapter.predict_params else None
    extra = f" {accept.description}" if accept and accept.description else ""
    return {
        "name": "accept",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": media},
        "allowEmptyValue": True,
        "description": (
            "The type of the answer." + extra + " The Accept request header chooses it too (q-values honoured; "
            f"*/* or no header picks {media[0]}); this query argument, or an `accept` form or JSON field, "
            "takes precedence over the header; an empty value counts as not given. None acceptable: 406."
        ),
    }


# ----------------------------------------------------------------------- response


def ok_response(adapter: ModelAdapter, output: dict[str, Any] | None, *, v1: bool) -> dict[str, Any]:
    """The 200 answer: one content entry per media type the model answers."""
    if output is not None:
        json_schema, what = output, "The model's output, validated against its declared schema."
    elif v1:
        json_schema, what = {}, "The model's output as a JSON value (no envelope on the v1 route)."
    else:
        json_schema, what = ref("Predictions"), 'The model\'s output wrapped as {"status": "OK", "predictions": ...}.'
    content: dict[str, Any] = {}
    for media in adapter.media_types or (JSON_MEDIA,):
        if is_json_media(media, wildcard=True):
            content[media] = {"schema": json_schema}
        else:
            content[media] = {"schema": {**BINARY, "contentMediaType": media}}
    if len(content) > 1 or JSON_MEDIA not in content:
        what += " Other media types are the model's raw output (a returned file comes as an attachment)."
    return {"description": what, "content": content}


def predict_operation(
    adapter: ModelAdapter, components: Components, *, operation_id: str, v1: bool, timeout: bool
) -> dict[str, Any]:
    """The POST operation predicting with ``adapter`` (which has predict params)."""
    params = adapter.predict_params
    assert params is not None
    media = adapter.media_types
    op: dict[str, Any] = {
        "tags": [adapter.name],
        "operationId": operation_id,
        "summary": f"Predict with {adapter.name}" + (" (v1 route)" if v1 else ""),
        "description": _predict_description(adapter, v1=v1),
    }
    if media:
        op["parameters"] = [accept_parameter(adapter)]
        params = params.without("accept")
    body = request_body(params, v1=adapter.interface == "v1")
    if body is not None:
        if adapter.interface == "v1" and params.get("data") is not None and params.get("url") is not None:
            urls_checked = bool(adapter.urls_fetched_by_model({"url": ["http://example.org/"]}))
            for content in body["content"].values():
                content["schema"] = v1_predict_schema(content["schema"], urls_checked=urls_checked)
            body["required"] = True
        op["requestBody"] = body
    responses: dict[str, Any] = {"200": ok_response(adapter, components.output_schema(adapter), v1=v1)}
    codes = ["400", *(["406"] if media else []), "408", "413", "422", "500", "501", "503"]
    codes += ["504"] if timeout else []
    responses.update({code: {"$ref": f"#/components/responses/{code}"} for code in codes})
    responses["default"] = {"$ref": "#/components/responses/ModelStatus"}
    op["responses"] = responses
    return op


def _predict_description(adapter: ModelAdapter, *, v1: bool) -> str:
    lines = [f"Runs the predict method of the {adapter.interface} model `{adapter.name}`."]
    if adapter.interface == "v1":
        lines.append(
            "Give exactly one of `data` (files) or `url` (URLs, also as repeated query arguments); "
            "both or neither answers 400, and so does a URL the server will not fetch (not http or https, "
            "or a host that is not a public address)."
        )
    if adapter.output_schema is not None:
        lines.append("A JSON answer is validated against the model's declared schema; an invalid one answers 500.")
    if v1:
        lines.append("This is the DEEPaaS v1 route: a JSON answer is the model's output without the envelope.")
    return " ".join(lines)
