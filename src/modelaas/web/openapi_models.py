"""The per-model part of the OpenAPI document: one predict operation per model.

Request bodies come from the model's parameter IR (:func:`modelaas.model.schema.object_schema`),
answers from its media types and declared output schema. Output schemas may bring JSON-schema
``$defs`` (pydantic does); they are moved into ``components/schemas`` under names that do not
clash with other models' and every ``$ref`` to them is rewritten.
"""

from __future__ import annotations

import re
from typing import Any

from modelaas.model.adapters import JSON_MEDIA, ModelAdapter
from modelaas.model.params import Kind, ParamSet
from modelaas.model.schema import object_schema

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


def is_json_media(media_type: str) -> bool:
    base = media_type.split(";")[0].strip().lower()
    return base in (JSON_MEDIA, "*/*") or base.endswith("+json")


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


def request_body(params: ParamSet) -> dict[str, Any] | None:
    """The ``requestBody`` for ``params`` (``accept`` already removed), or None without params."""
    if not len(params):
        return None
    schema = object_schema(params)
    encoding: dict[str, Any] = {}
    for p in params:
        if p.is_file and p.media_types:
            encoding[p.wire_name] = {"contentType": ", ".join(p.media_types)}
        elif p.kind is Kind.OBJECT:
            encoding[p.wire_name] = {"contentType": JSON_MEDIA}
    form = {"schema": schema, **({"encoding": encoding} if encoding else {})}
    if params.has_files:
        content = {MULTIPART: form}
        where = "Send the arguments as multipart/form-data: files as file parts, lists as repeated parts."
    else:
        content = {JSON_MEDIA: {"schema": schema}, FORM: form, MULTIPART: form}
        where = (
            "Send the arguments as a JSON object, or as form fields (lists as repeated keys or one JSON array, "
            "objects as JSON text)."
        )
    return {
        "description": where + " Non-file arguments may also be given in the query string.",
        "required": any(p.required for p in params),
        "content": content,
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
        "description": (
            "The type of the answer." + extra + " The Accept request header chooses it too (q-values honoured; "
            f"*/* or no header picks {media[0]}); this query argument, or an `accept` form or JSON field, "
            "takes precedence over the header. None acceptable: 406."
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
        if is_json_media(media):
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
    body = request_body(params)
    if body is not None:
        op["requestBody"] = body
    responses: dict[str, Any] = {"200": ok_response(adapter, components.output_schema(adapter), v1=v1)}
    codes = ["400", *(["406"] if media else []), "413", "422", "500", "501", "503", *(["504"] if timeout else [])]
    responses.update({code: {"$ref": f"#/components/responses/{code}"} for code in codes})
    responses["default"] = {"$ref": "#/components/responses/ModelStatus"}
    op["responses"] = responses
    return op


def _predict_description(adapter: ModelAdapter, *, v1: bool) -> str:
    lines = [f"Runs the predict method of the {adapter.interface} model `{adapter.name}`."]
    if adapter.interface == "v1":
        lines.append(
            "Give exactly one of `data` (files) or `url` (URLs, also as repeated query arguments); "
            "both or neither answers 400."
        )
    if adapter.output_schema is not None:
        lines.append("A JSON answer is validated against the model's declared schema; an invalid one answers 500.")
    if v1:
        lines.append("This is the DEEPaaS v1 route: a JSON answer is the model's output without the envelope.")
    return " ".join(lines)
