"""The OpenAPI 3.1 document: exactly the routes this server has, and what each answers.

Built from the same settings as the route table (:mod:`modelaas.web.routes`) and from each
model's parameter IR. Paths are full paths, base path included, so the document matches
the routes literally (no ``servers`` entry). Predict and train have paths per model (see
:mod:`modelaas.web.openapi.train` for train); routes that switch off
(``--nopredict-endpoint``, ``--notrain-endpoint``) or do not apply (v1 routes without a v1
model, train routes of a model without train) are absent. Errors are described as
answered: ``{"message": ..., "request_id": ...}`` bodies, and the bare field -> messages map
of a 422; every answer documents the ``X-Request-ID`` header. With access tokens configured,
:mod:`modelaas.web.openapi.security` adds the security schemes and the 401/403 answers of
the guarded operations. The 431 and 408 that the server itself answers before any route
(request head too large or too slow) are told once, in ``info.description``. Redirects (308
to the slashed path) and the docs pages themselves are left out. :mod:`modelaas.web.docs`
caches the result.
"""

from __future__ import annotations

import copy
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from modelaas.model.adapters import ModelAdapter
from modelaas.runtime.media import JSON_MEDIA
from modelaas.web.openapi.models import Components, predict_operation, ref, unique_id
from modelaas.web.openapi.oip import SCHEMAS as OIP_SCHEMAS
from modelaas.web.openapi.oip import oip_access_answers, oip_paths
from modelaas.web.openapi.security import (
    ACCESS_HEADERS,
    ACCESS_RESPONSES,
    METHODS,
    SECURITY_SCHEMES,
    secure,
    tokens_of,
)
from modelaas.web.openapi.train import TRAIN_RESPONSES, TRAIN_SCHEMAS, train_paths
from modelaas.web.openapi.versions import SCHEMAS as VERSION_SCHEMAS
from modelaas.web.openapi.versions import delete_operation, version_access_answers, version_paths
from modelaas.web.state import AppState

_STRING = {"type": "string"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["message", "request_id"],
        "properties": {
            "message": {"type": "string", "description": "What went wrong and what to do next."},
            "request_id": {
                "type": "string",
                "description": "The request's id, as in the X-Request-ID header; the server log records what "
                "happened under it.",
            },
        },
    },
    "ValidationErrors": {
        "type": "object",
        "description": "Each invalid argument -> its messages (a nested map for items of lists and objects).",
        "additionalProperties": {"anyOf": [{"type": "array"}, {"type": "object"}]},
        "examples": [{"top_k": ["Not a valid integer."], "image": ["Missing data for required field."]}],
    },
    "Link": {
        "type": "object",
        "required": ["rel", "href"],
        "properties": {"rel": _STRING, "type": _STRING, "href": _STRING},
    },
    "Version": {
        "type": "object",
        "required": ["version", "id", "links"],
        "properties": {
            "version": {"type": "string", "enum": ["stable", "deprecated"]},
            "id": {"type": "string", "enum": ["v2", "v1"]},
            "links": {"type": "array", "items": ref("Link")},
        },
    },
    "Versions": {
        "type": "object",
        "required": ["versions", "links"],
        "properties": {
            "versions": {"type": "array", "items": ref("Version")},
            "links": {"type": "array", "items": ref("Link")},
        },
    },
    "ModelEntry": {
        "type": "object",
        "description": "A model's id, name and links, updated with its metadata (free-form keys).",
        "required": ["id", "name", "links"],
        "properties": {"id": _STRING, "name": _STRING, "links": {"type": "array", "items": ref("Link")}},
        "additionalProperties": True,
    },
    "ModelList": {
        "type": "object",
        "required": ["models"],
        "properties": {"models": {"type": "array", "items": ref("ModelEntry")}},
    },
    "Predictions": {
        "type": "object",
        "required": ["status", "predictions"],
        "properties": {"status": {"type": "string", "const": "OK"}, "predictions": {"description": "Any JSON value."}},
    },
}

_ERRORS = {
    "400": "The request is malformed (invalid JSON, a JSON body that is not an object, invalid multipart, too "
    "many parts; on v1 models both or neither of data and url).",
    "404": "No such model; the message names the installed models.",
    "406": "The Accept header allows none of the types the model answers.",
    "408": "The request body did not arrive within the server's --body-timeout; the connection is closed.",
    "413": "The body (--client-max-size) or a form field or JSON body (--max-field-size) is over the limit.",
    "500": "The model failed, its output broke its declared schema or cannot be sent as JSON (NaN or an "
    "infinity), or the server failed.",
    "501": "The model does not implement this method.",
    "503": "Too many predictions are waiting; retry after the number of seconds in Retry-After.",
    "504": "The prediction ran past the server's predict timeout.",
}
_HEADERS: dict[str, Any] = {
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}},
    "X-Request-ID": {
        "description": "The request's id: the client's own X-Request-ID when it is a sane token (letters, digits "
        "and ._:+/=-, at most 128 characters, starting with a letter or digit), else a new one.",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 128},
    },
}


def build_document(st: AppState) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the app built for ``st`` (a fresh dict each call)."""
    settings, runtime = st.settings, st.runtime
    base = settings.base_path
    models = runtime.models()
    summaries = {m.name: _summary(m) for m in models}
    components = Components(copy.deepcopy(SCHEMAS))
    paths: dict[str, Any] = {
        f"{base}/": {"get": _get("versions", "get_versions", "API versions and links", ref("Versions"))},
        f"{base}/v2/": {"get": _get("versions", "get_v2", "The v2 API version", ref("Version"))},
        f"{base}/v2/models/": {"get": _get("models", "list_models", "Installed models", ref("ModelList"), 500)},
        f"{base}/v2/models/{{model}}/": {"get": _model_entry("get_model", models)},
        f"{base}/v2/debug/": {"get": _debug(settings.debug_endpoint)},
        f"{base}/healthz": {"get": _get("health", "healthz", "The process answers", _object(status="ok"))},
        f"{base}/readyz": {"get": _readyz()},
    }
    if settings.metrics:
        paths[f"{base}/metrics"] = {"get": _metrics(settings.metrics_port)}
    used: set[str] = set()
    predicts = [m for m in models if m.predict_params is not None] if settings.predict_endpoint else []
    timeout = settings.predict_timeout is not None
    for m in predicts:
        op_id = unique_id(f"predict_{m.name}", used)
        op = predict_operation(m, components, operation_id=op_id, v1=False, timeout=timeout)
        paths[f"{base}/v2/models/{m.name}/predict/"] = {"post": op}
    if st.has_v1:
        paths[f"{base}/v1/"] = {"get": _get("versions", "get_v1", "The v1 API version", ref("Version"))}
        paths[f"{base}/v1/models/"] = {
            "get": _get("models", "list_v1_models", "Installed v1 models", ref("ModelList"), 500)
        }
        paths[f"{base}/v1/models"] = {  # where DEEPaaS 1.x answers it: the same list, no redirect
            "get": _get(
                "models", "list_v1_models_deepaas1", "Installed v1 models (DEEPaaS 1.x path)", ref("ModelList"), 500
            )
        }
        paths[f"{base}/v1/models/{{model}}"] = {"get": _model_entry("get_v1_model", models, v1=True)}
        for m in predicts:
            if m.interface == "v1":
                op_id = unique_id(f"predict_v1_{m.name}", used)
                op = predict_operation(m, components, operation_id=op_id, v1=True, timeout=timeout)
                paths[f"{base}/v1/models/{m.name}/predict"] = {"post": op}
    components.schemas.update(copy.deepcopy(OIP_SCHEMAS))
    protocol = oip_paths(models, base=base, predict=settings.predict_endpoint, used=used)
    paths.update(protocol)
    components.schemas.update(copy.deepcopy(VERSION_SCHEMAS))
    paths.update(version_paths(base=base, used=used))
    paths[f"{base}/v2/models/{{model}}/versions/{{version}}"]["delete"] = delete_operation(used)
    if settings.train_endpoint:
        components.schemas.update(copy.deepcopy(TRAIN_SCHEMAS))
        paths.update(train_paths(models, base=base, v1_routes=st.has_v1, used=used))
    responses = _error_responses(train=settings.train_endpoint)
    headers = copy.deepcopy(_HEADERS)
    extra: dict[str, Any] = {}
    guarded = tokens_of(st).enabled
    if guarded:
        secure(paths, routes=st.routes)
        oip_access_answers(paths, set(protocol))
        version_access_answers(paths, base=base)
        responses.update(copy.deepcopy(ACCESS_RESPONSES))
        headers.update(copy.deepcopy(ACCESS_HEADERS))
        extra["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    _with_request_id(paths, responses)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modelaas",
            "version": _package_version(),
            "description": _description(models, summaries, guarded=guarded),
        },
        "tags": [
            *(
                {"name": m.name, "description": summaries[m.name] or f"The {m.interface} model {m.name}."}
                for m in models
            ),
            *(copy.deepcopy(tag) for tag in _TAGS if tag["name"] not in summaries),
        ],
        "paths": paths,
        "components": {"schemas": components.schemas, "responses": responses, "headers": headers, **extra},
    }


_TAGS = [
    {"name": "models", "description": "The installed models and their metadata."},
    {"name": "versions", "description": "API versions and links (DEEPaaS compatible)."},
    {"name": "health", "description": "Liveness and readiness probes."},
    {"name": "debug", "description": "The captured server log, when --debug-endpoint is on."},
    {"name": "inference", "description": "The Open Inference Protocol (KServe V2, Triton): see docs/oip.md."},
    {"name": "model versions", "description": "Registered versions of models and what each serves: docs/versions.md."},
]


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON_MEDIA: {"schema": schema}}}


def _get(tag: str, op_id: str, summary: str, schema: dict[str, Any], *errors: int) -> dict[str, Any]:
    responses = {"200": _json(schema, summary)}
    responses.update({str(code): {"$ref": f"#/components/responses/{code}"} for code in errors})
    return {"tags": [tag], "operationId": op_id, "summary": summary, "responses": responses}


def _object(**consts: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(consts),
        "properties": {key: {"type": "string", "const": value} for key, value in consts.items()},
    }


def _model_entry(op_id: str, models: list[ModelAdapter], *, v1: bool = False) -> dict[str, Any]:
    names = [m.name for m in models if m.interface == "v1" or not v1]
    op = _get("models", op_id, "One model's entry" + (" (v1 models only)" if v1 else ""), ref("ModelEntry"), 404, 500)
    known = ", ".join(names) or "none installed"
    model: dict[str, Any] = {"type": "string", "description": f"The model's name: {known}; any other answers 404."}
    if names:
        model["examples"] = names
    param: dict[str, Any] = {"name": "model", "in": "path", "required": True, "schema": model}
    if names:
        param["example"] = names[0]
    return {"parameters": [param], **op}


def _debug(enabled: bool) -> dict[str, Any]:
    if enabled:
        log = {"text/plain": {"schema": {"type": "string"}}}
        ok = {"200": {"description": "The captured log, oldest line first.", "content": log}}
    else:
        ok = {"204": {"description": "Debug capture is off (start the server with --debug-endpoint)."}}
    return {"tags": ["debug"], "operationId": "get_debug", "summary": "The captured server log", "responses": ok}


def _metrics(port: int | None) -> dict[str, Any]:
    where = f" (on port {port} only: --metrics-port)" if port else ""
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "tags": ["health"],
        "operationId": "get_metrics",
        "summary": f"Prometheus metrics of every serving process{where}",
        "responses": {"200": {"description": "The Prometheus text format (docs/operations.md).", "content": text}},
    }


def _readyz() -> dict[str, Any]:
    ready = _object(status="ready")
    ready["required"].append("models")
    ready["properties"]["models"] = {"type": "array", "items": {"type": "string"}}
    starting = _object(status="starting")
    starting["required"].append("message")
    starting["properties"]["message"] = {"type": "string"}
    return {
        "tags": ["health"],
        "operationId": "readyz",
        "summary": "The models are warmed and predictions are served",
        "responses": {
            "200": _json(ready, "Ready: every model has been warmed."),
            "503": {**_json(starting, "Still warming the models."), "headers": {"Retry-After": _header()}},
        },
    }


def _header() -> dict[str, str]:
    return {"$ref": "#/components/headers/Retry-After"}


def _error_responses(*, train: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {code: _json(ref("Error"), text) for code, text in _ERRORS.items()}
    responses["503"]["headers"] = {"Retry-After": _header()}
    responses["422"] = _json(ref("ValidationErrors"), "Some arguments are invalid: each one -> its messages.")
    responses["ModelStatus"] = _json(ref("Error"), "An error status raised by the model itself (any 4xx or 5xx).")
    if train:
        responses.update(copy.deepcopy(TRAIN_RESPONSES))
    return responses


def _with_request_id(paths: dict[str, Any], responses: dict[str, Any]) -> None:
    """Every answer documents the X-Request-ID header (shared answers once, in the components)."""
    header = {"$ref": "#/components/headers/X-Request-ID"}
    answers = [r for item in paths.values() for m in METHODS if m in item for r in item[m]["responses"].values()]
    for answer in [*answers, *responses.values()]:
        if "$ref" not in answer:
            answer["headers"] = {"X-Request-ID": dict(header), **answer.get("headers", {})}


def _summary(adapter: ModelAdapter) -> str:
    try:
        meta = adapter.metadata()
    except Exception:  # the models route reports a failing get_metadata(); the docs stay up
        return ""
    for key in ("summary", "Summary", "description", "Description"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            line = value.strip().splitlines()[0]
            return line if len(line) <= 200 else line[:199] + "…"
    return ""


def _description(models: list[ModelAdapter], summaries: dict[str, str], *, guarded: bool) -> str:
    served = "\n".join(
        f"- `{m.name}` ({m.interface} interface)" + (f": {summaries[m.name]}" if summaries[m.name] else "")
        for m in models
    )
    access = (
        "Access control is on: the operations that need an access token say which scope; send it as "
        "`Authorization: Bearer <token>` (401 without a valid token, 403 without the scope).\n\n"
        if guarded
        else ""
    )
    return (
        "Models served over the DEEPaaS-compatible REST API by modelaas:\n\n"
        f"{served or '- none'}\n\n{access}"
        'Errors answer JSON `{"message": "...", "request_id": "..."}`; invalid arguments answer 422 with a map of '
        "argument -> messages. Every answer carries the request's id in the X-Request-ID header (send your own "
        "X-Request-ID to choose it). A path without its trailing slash answers 308 to the slashed path (method "
        "kept).\n\n"
        "Before any route, the server answers 431 to a request line plus headers over its --max-header-size, and "
        '408 to a request head that takes longer than its --header-timeout: `{"message": "..."}` only, without '
        "a request id, and the connection is closed. These two are not repeated under each operation."
    )


def _package_version() -> str:
    try:
        return version("modelaas")
    except PackageNotFoundError:
        return "0+unknown"
