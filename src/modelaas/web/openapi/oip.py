"""The Open Inference Protocol's routes in the OpenAPI document: health, metadata, readiness, infer per model.

Each model's infer operation describes its input tensors (name, datatype, shape and, for
JSON ``data``, the nested arrays of that shape) from the same mapping the server uses.
"""

from __future__ import annotations

from typing import Any

from modelaas.model.adapters import ModelAdapter
from modelaas.model.schema import tensor_schema
from modelaas.model.tensors import DATATYPES
from modelaas.oip.mapping import inputs_of, outputs_of
from modelaas.web.openapi.models import unique_id

JSON_MEDIA = "application/json"
BINARY_MEDIA = "application/octet-stream"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_TENSOR_PROPS: dict[str, Any] = {
    "name": {"type": "string"},
    "datatype": {
        "type": "string",
        "enum": list(DATATYPES),
    },
    "shape": {"type": "array", "items": {"type": "integer"}},
    "parameters": {"type": "object"},
}
SCHEMAS: dict[str, Any] = {
    "OipError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "request_id": {"type": "string", "description": "The request's id, as in the X-Request-ID header."},
        },
    },
    "OipTensor": {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {**_TENSOR_PROPS, "data": {"description": "The elements, row-major: flat or nested arrays."}},
    },
    "OipTensorMetadata": {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": _TENSOR_PROPS,
    },
    "OipServerMetadata": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "OipModelMetadata": {
        "type": "object",
        "required": ["name", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": _ref("OipTensorMetadata")},
            "outputs": {"type": "array", "items": _ref("OipTensorMetadata")},
        },
    },
    "OipInferResponse": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "outputs": {"type": "array", "items": _ref("OipTensor")},
        },
    },
}

_BINARY_NOTE = (
    " Each input's `data` holds exactly the product of its `shape` elements (row-major, flat or nested),"
    " else 400 naming the input. With the binary tensor data extension the body is"
    " `application/octet-stream`: the JSON header "
    "(its length in the `Inference-Header-Content-Length` header), then each input's bytes in order, "
    "as its `parameters.binary_data_size` says."
)


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON_MEDIA: {"schema": _ref("OipError")}}}


def _op(op_id: str, summary: str, ok: dict[str, Any], *errors: tuple[str, str]) -> dict[str, Any]:
    responses = {"200": ok, **{code: _error(text) for code, text in errors}}
    return {"tags": ["inference"], "operationId": op_id, "summary": summary, "responses": responses}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON_MEDIA: {"schema": schema}}}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


_MODEL = _path_param("model", "The model's name.")
_VERSION = _path_param("version", "The version the model declares (its metadata's version); any other: 404.")
_NOT_FOUND = ("404", "No such model, or not that version.")


def oip_paths(models: list[ModelAdapter], *, base: str, predict: bool, used: set[str]) -> dict[str, Any]:
    ready = {"type": "object", "properties": {"ready": {"type": "boolean"}}}
    paths: dict[str, Any] = {
        f"{base}/v2/health/live": {"get": _op("oip_live", "The server is live", _json({"type": "object"}, "Live."))},
        f"{base}/v2/health/ready": {
            "get": _op("oip_ready", "The models are warmed", _json(ready, "Ready."), ("400", "Not ready yet."))
        },
        f"{base}/v2": {
            "get": _op("oip_server_metadata", "Server metadata", _json(_ref("OipServerMetadata"), "The server."))
        },
    }
    for suffix, params, tail in (("", [_MODEL], ""), ("_version", [_MODEL, _VERSION], "/versions/{version}")):
        m = f"{base}/v2/models/{{model}}{tail}"
        paths[m] = {
            "parameters": params,
            "get": _op(
                f"oip_model_metadata{suffix}",
                "A model's inputs and outputs as tensors",
                _json(_ref("OipModelMetadata"), "The model's metadata."),
                _NOT_FOUND,
            ),
        }
        paths[f"{m}/ready"] = {
            "parameters": params,
            "get": _op(
                f"oip_model_ready{suffix}",
                "The model is ready",
                _json(ready, "Ready."),
                ("400", "Not ready yet."),
                _NOT_FOUND,
            ),
        }
    if not predict:
        return paths
    for adapter in models:
        if adapter.predict_params is None:
            continue
        op = _infer(adapter, unique_id(f"oip_infer_{adapter.name}", used))
        paths[f"{base}/v2/models/{adapter.name}/infer"] = {"post": op}
    generic = _infer(None, "oip_infer_version")
    paths[f"{base}/v2/models/{{model}}/versions/{{version}}/infer"] = {
        "parameters": [_MODEL, _VERSION],
        "post": generic,
    }
    return paths


def _infer(adapter: ModelAdapter | None, op_id: str) -> dict[str, Any]:
    if adapter is None:
        inputs: dict[str, Any] = {"type": "array", "items": _ref("OipTensor")}
        summary = "Infer with the named version of a model"
        described = "The model's input tensors (see its metadata)."
    else:
        variants = []
        for t in inputs_of(adapter):
            variants.append(
                {
                    "type": "object",
                    "required": ["name", "datatype", "shape"],
                    "properties": {
                        "name": {"type": "string", "enum": [t.name]},
                        "datatype": {"type": "string"},
                        "shape": {"type": "array", "items": {"type": "integer"}},
                        "data": {"anyOf": [tensor_schema(t.datatype, t.shape), {"type": "array"}]},
                        "parameters": {"type": "object"},
                    },
                }
            )
        inputs = {"type": "array", "items": {"anyOf": variants} if variants else _ref("OipTensor")}
        summary = f"Infer with {adapter.name} (Open Inference Protocol)"
        shown = ", ".join(f"`{t.name}` {t.datatype} {list(t.shape)}" for t in inputs_of(adapter)) or "none"
        outs = ", ".join(f"`{t.name}` {t.datatype} {list(t.shape)}" for t in outputs_of(adapter))
        described = f"Inputs: {shown}. Outputs: {outs}."
    request = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": inputs,
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
                },
            },
        },
    }
    op = _op(
        op_id,
        summary,
        {
            "description": "The output tensors (binary ones after the JSON header, as in the request).",
            "content": {
                JSON_MEDIA: {"schema": _ref("OipInferResponse")},
                BINARY_MEDIA: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        ("400", "A tensor does not fit the model (named in the message), or the body cannot be read."),
        _NOT_FOUND,
        ("413", "The body is over the server's --client-max-size."),
        ("500", "The model failed."),
        ("503", "Too many predictions are waiting; retry later."),
        ("504", "The prediction ran past the server's predict timeout."),
    )
    op["responses"]["408"] = {"$ref": "#/components/responses/408"}  # the body timeout, before any route runs
    if adapter is not None:
        op["tags"] = [adapter.name]
    op["description"] = described + _BINARY_NOTE
    op["requestBody"] = {
        "required": True,
        "content": {JSON_MEDIA: {"schema": request}, BINARY_MEDIA: {"schema": {"type": "string", "format": "binary"}}},
    }
    return op


def oip_access_answers(paths: dict[str, Any], oip_keys: set[str]) -> None:
    """Give the guarded OIP operations their own 401/403 answers (``{"error": ...}``), in place."""
    for key in oip_keys:
        for method, op in paths[key].items():
            if method == "parameters":
                continue
            for code, text in (("401", "No or an unknown access token."), ("403", "The token lacks the scope.")):
                if code in op["responses"]:
                    op["responses"][code] = _error(text)
