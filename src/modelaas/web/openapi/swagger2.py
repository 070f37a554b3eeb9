"""The Swagger 2.0 document served at ``<b>/swagger.json``, for existing DEEPaaS tooling.

DEEPaaS 2.6.0 serves Swagger 2.0 there, and tools read it: the DEEPaaS web UI builds its
form from ``paths[p].post.parameters``, its output tabs from ``produces`` and its output
widgets from ``definitions.ModelPredictionResponse``. The OpenAPI 3.1 document
(:mod:`modelaas.web.openapi`, at ``<b>/openapi.json``) stays the full description; this one is
derived from the same sources:

* paths, operations, answers, headers, shared answers and schemas are the 3.1 document's,
  converted (:func:`modelaas.web.openapi.swagger2_params.schema2`; the shared answers go to the
  top-level ``responses``, the schemas to ``definitions``, each operation lists the media
  types of its answers in ``produces``);
* the predict and train operations get their parameters from each model's parameter IR, in
  DEEPaaS's shapes (:func:`modelaas.web.openapi.swagger2_params.parameters`): non-file arguments in
  the query string, files as ``formData`` of ``type: file`` (``consumes``
  ``multipart/form-data``); when the model has an ``accept`` argument it comes last, as a
  header parameter whose ``enum`` is its choices and ``*/*``, and ``produces`` is that same
  list (last because the DEEPaaS web UI pairs its form's values with the parameters after
  leaving ``accept`` out, and so expects it at the end);
* the first predicting model's declared output schema is ``definitions/ModelPredictionResponse``
  (what one-model clients such as the DEEPaaS web UI read; DEEPaaS names a ``Schema``
  subclass after its class, which its own UI then misses); other models' are
  ``ModelPredictionResponse.<model>``. A model without one answers ``Predictions``
  (``{"status": "OK", "predictions": ...}``) and adds no definition.

What Swagger 2.0 cannot say is said in words or left to the 3.1 document: a JSON object body
as an alternative to form fields (in the operation's description), several types for one
value (``anyOf``: any value), an answer of several media types (the JSON schema is given,
the other types are in ``produces``), bearer tokens (an ``apiKey`` in the Authorization
header).
"""

from __future__ import annotations

import copy
from typing import Any

from modelaas.model.adapters import ModelAdapter
from modelaas.model.params import ParamSet
from modelaas.runtime.media import JSON_MEDIA, is_json_media
from modelaas.web.openapi.document import build_document
from modelaas.web.openapi.models import component_name
from modelaas.web.openapi.security import METHODS
from modelaas.web.openapi.swagger2_params import DEFINITIONS, parameters, schema2
from modelaas.web.state import AppState

RESPONSE = "ModelPredictionResponse"
FORM_TYPES = ["multipart/form-data", "application/x-www-form-urlencoded"]
_OTHER_BODIES = (
    " The arguments are documented where DEEPaaS documents them; modelaas also reads every non-file argument "
    "from form fields (urlencoded or multipart) and from a JSON object body (without files): see /openapi.json."
)
_SECURITY: dict[str, Any] = {
    "bearer": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "An access token, sent as `Authorization: Bearer <token>`.",
    },
    "accessTokenQuery": {"type": "apiKey", "in": "query", "name": "access_token"},
}


class _ModelOperation:
    """What replaces a model operation's 3.1 request body: its arguments, and its ``accept`` choices."""

    def __init__(self, params: ParamSet, media: tuple[str, ...] = ()) -> None:
        self.params = params.without("accept") if media else params
        self.media = media


def build_swagger(st: AppState, document: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Swagger 2.0 document of the app built for ``st`` (from its 3.1 ``document`` when given)."""
    doc = copy.deepcopy(document) if document is not None else build_document(st)
    components = doc.get("components", {})
    shared_headers: dict[str, Any] = components.get("headers", {})
    definitions = {name: schema2(schema) for name, schema in components.get("schemas", {}).items()}
    special = _model_operations(st)
    outputs = _outputs(st, doc, definitions)
    paths: dict[str, Any] = {}
    for path, item in doc["paths"].items():
        out: dict[str, Any] = {}
        if "parameters" in item:
            out["parameters"] = [_parameter(p) for p in item["parameters"]]
        for method in METHODS:
            if method in item:
                op = item[method]
                output = outputs.get(path) if method == "post" else None
                out[method] = _operation(op, special.get((path, method)), shared_headers, output)
        paths[path] = out
    swagger: dict[str, Any] = {
        "swagger": "2.0",
        "info": doc["info"],
        "tags": doc.get("tags", []),
        "paths": paths,
        "definitions": definitions,
        "responses": {
            code: _response(answer, shared_headers)[0] for code, answer in components.get("responses", {}).items()
        },
    }
    if "securitySchemes" in components:
        swagger["securityDefinitions"] = copy.deepcopy(_SECURITY)
    return swagger


def _model_operations(st: AppState) -> dict[tuple[str, str], _ModelOperation]:
    """The predict and train operations, by (path, method), as the 3.1 document writes them."""
    base, ops = st.settings.base_path, {}
    for m in st.runtime.models():
        if m.predict_params is not None:
            ops[(f"{base}/v2/models/{m.name}/predict/", "post")] = _ModelOperation(m.predict_params, m.media_types)
            ops[(f"{base}/v1/models/{m.name}/predict", "post")] = _ModelOperation(m.predict_params, m.media_types)
        if m.train_params is not None:
            ops[(f"{base}/v2/models/{m.name}/train/", "post")] = _ModelOperation(m.train_params)
            ops[(f"{base}/v1/models/{m.name}/train", "put")] = _ModelOperation(m.train_params)
    return ops


def _outputs(st: AppState, doc: dict[str, Any], definitions: dict[str, Any]) -> dict[str, str]:
    """Move each v2 predict path's declared output schema into ``definitions``; answer path -> its name."""
    base, names = st.settings.base_path, {}
    models: list[ModelAdapter] = [m for m in st.runtime.models() if m.predict_params is not None]
    for m in models:
        path = f"{base}/v2/models/{m.name}/predict/"
        op = doc["paths"].get(path, {}).get("post")
        if op is None or m.output_schema is None:
            continue
        schema = op["responses"]["200"].get("content", {}).get(JSON_MEDIA, {}).get("schema")
        if schema is None:
            continue
        name = RESPONSE if m is models[0] else f"{RESPONSE}.{component_name(m.name)}"
        definitions[name] = schema2(schema)
        names[path] = name
    return names


def _operation(
    op: dict[str, Any], special: _ModelOperation | None, headers: dict[str, Any], output: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {key: copy.deepcopy(op[key]) for key in ("tags", "summary", "description") if key in op}
    if "operationId" in op:
        out["operationId"] = op["operationId"]
    skip = "accept" if special is not None and special.media else None  # written in DEEPaaS's shape below
    params = [_parameter(p) for p in op.get("parameters", []) if p["name"] != skip]
    consumes: list[str] = []
    if special is not None:
        params += parameters(special.params)
        if any(p["in"] == "formData" for p in params):
            has_files = any(p.get("type") == "file" for p in params)
            consumes = FORM_TYPES[:1] if has_files else list(FORM_TYPES)
        elif len(special.params):
            consumes = [JSON_MEDIA, *FORM_TYPES]
        if len(special.params):
            out["description"] = out.get("description", "") + _OTHER_BODIES
    elif "requestBody" in op:
        params += _body_parameters(op["requestBody"])
        consumes = list(op["requestBody"].get("content", {}))
    produces: list[str] = []
    responses: dict[str, Any] = {}
    for code, answer in op["responses"].items():
        responses[code], media = _response(answer, headers)
        produces += [m for m in media if m not in produces]
    if output is not None:
        responses["200"]["schema"] = {"$ref": DEFINITIONS + output}
    if special is not None and special.media:
        params.append(_accept(special.media, op))
        produces = [*special.media, *(m for m in produces if m not in special.media), "*/*"]
    if consumes:
        out["consumes"] = consumes
    if produces:
        out["produces"] = produces
    out["parameters"] = params
    out["responses"] = responses
    if "security" in op:
        out["security"] = copy.deepcopy(op["security"])
    return out


def _accept(media: tuple[str, ...], op: dict[str, Any]) -> dict[str, Any]:
    """The ``accept`` argument as DEEPaaS documents it: a header, its choices and ``*/*``."""
    described: dict[str, Any] = next((p for p in op.get("parameters", []) if p["name"] == "accept"), {})
    text = described.get("description", "The type of the answer.")
    return {
        "in": "header",
        "name": "accept",
        "required": False,
        "type": "string",
        "enum": [*media, "*/*"],
        "default": media[0],
        "description": text,
    }


def _parameter(param: dict[str, Any]) -> dict[str, Any]:
    """A 3.1 path, query or header parameter as a 2.0 one."""
    schema = schema2(param.get("schema", {}))
    out: dict[str, Any] = {"in": param["in"], "name": param["name"], "required": bool(param.get("required"))}
    out["type"] = schema.pop("type", "string")
    out.update({k: v for k, v in schema.items() if k not in ("x-nullable", "example", "title", "readOnly")})
    if out["type"] == "array":
        out.setdefault("items", {"type": "string"})
        out["collectionFormat"] = "multi" if param["in"] == "query" else "csv"
    if "description" in param:
        out["description"] = param["description"]
    if param.get("allowEmptyValue") and param["in"] == "query":
        out["allowEmptyValue"] = True
    example = param.get("example", schema.get("example"))
    if example is not None:
        out["x-example"] = example
    return out


def _body_parameters(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A request body no model operation describes: its JSON schema as a body parameter."""
    content = body.get("content", {})
    media = next((m for m in content if is_json_media(m, wildcard=True)), None)
    if media is None:
        return []
    schema = schema2(content[media].get("schema", {}))
    return [{"in": "body", "name": "body", "required": bool(body.get("required")), "schema": schema}]


def _response(answer: dict[str, Any], headers: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A 3.1 answer as a 2.0 one, and the media types it comes in."""
    if "$ref" in answer:
        return {"$ref": answer["$ref"].replace("#/components/responses/", "#/responses/")}, [JSON_MEDIA]
    out: dict[str, Any] = {"description": answer.get("description", "")}
    content: dict[str, Any] = answer.get("content", {})
    media = list(content)
    chosen = next((m for m in media if is_json_media(m, wildcard=True)), media[0] if media else None)
    if chosen is not None:
        out["schema"] = schema2(content[chosen].get("schema", {}))  # binary: type string, format binary
    if answer.get("headers"):
        out["headers"] = {name: _header(h, headers) for name, h in answer["headers"].items()}
    return out, media


def _header(header: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in header:
        header = shared.get(header["$ref"].rsplit("/", 1)[-1], {})
    schema = schema2(header.get("schema", {}))
    out: dict[str, Any] = {"type": schema.pop("type", "string")}
    out.update({k: v for k, v in schema.items() if k not in ("x-nullable", "example", "title", "readOnly")})
    if "description" in header:
        out["description"] = header["description"]
    return out
