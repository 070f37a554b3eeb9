"""The version routes in the OpenAPI document (web/model_versions.py): list, register, activate,
delete, reload. ``DELETE .../versions/{version}`` joins the Open Inference Protocol's metadata
path of that name (web/openapi/oip.py)."""

from __future__ import annotations

from typing import Any

from modelaas.web.openapi.models import unique_id

JSON_MEDIA = "application/json"
_STRING = {"type": "string"}
_NULLABLE_INT = {"type": ["integer", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: dict[str, Any] = {
    "VersionRecord": {
        "type": "object",
        "required": ["model", "version", "created_at", "source", "files", "active"],
        "properties": {
            "model": _STRING,
            "version": {"type": "integer", "minimum": 1},
            "created_at": {"type": "string", "format": "date-time"},
            "created_by": {"type": ["string", "null"], "description": "Who registered it (a token's id)."},
            "source": {
                "type": "object",
                "description": 'Where its files came from: {"kind": "job", "job": id} or {"kind": "archive", ...}.',
            },
            "description": {"type": ["string", "null"]},
            "args": {"type": "object", "description": "The arguments of the training that made it."},
            "metrics": {"type": "object", "description": "The last metrics that training reported."},
            "files": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"path": _STRING, "size": {"type": "integer", "minimum": 0}},
                },
            },
            "active": {"type": "boolean", "description": "Whether the model serves it."},
        },
    },
    "VersionList": {
        "type": "object",
        "required": ["model", "active", "generation", "versions"],
        "properties": {
            "model": _STRING,
            "active": _NULLABLE_INT,
            "generation": {"type": "integer", "minimum": 0},
            "versions": {"type": "array", "items": _ref("VersionRecord")},
        },
    },
    "ServingState": {
        "type": "object",
        "required": ["model", "active", "generation"],
        "properties": {
            "model": _STRING,
            "active": {**_NULLABLE_INT, "description": "The version served (null: the model as installed)."},
            "generation": {
                "type": "integer",
                "description": "Raised by each activation and reload; answers carry X-Modelaas-Generation.",
            },
        },
    },
}

_MODEL = {"name": "model", "in": "path", "required": True, "schema": _STRING, "description": "The model's name."}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": _STRING, "description": "A version number."}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON_MEDIA: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _shared(code: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{code}"}


def version_paths(*, base: str, used: set[str]) -> dict[str, Any]:
    """The path items of the version routes (every model: one set of templated paths)."""

    def op(op_id: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "tags": ["model versions"],
            "operationId": unique_id(op_id, used),
            "summary": summary,
            "responses": responses,
            **extra,
        }

    def post(op_id: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """A POST: the server's body timeout (408) comes before any route runs."""
        return op(op_id, summary, {**responses, "408": {"$ref": "#/components/responses/408"}}, **extra)

    collection = f"{base}/v2/models/{{model}}/versions/"
    register_body = {
        "required": True,
        "content": {
            JSON_MEDIA: {
                "schema": {
                    "type": "object",
                    "anyOf": [{"required": ["job"]}, {"required": ["mlflow"]}],
                    "properties": {
                        "job": {"type": "string", "description": "A finished training's id (or a unique prefix)."},
                        "mlflow": {
                            "type": "string",
                            "description": "Import from MLflow's Model Registry (needs --mlflow-tracking-uri): "
                            "models:/<name>/<n> or models:/<name>@<alias>.",
                        },
                        "description": _STRING,
                    },
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["archive"],
                    "properties": {
                        "archive": {"type": "string", "format": "binary", "description": ".zip, .tar.gz or .tar"},
                        "description": _STRING,
                    },
                }
            },
        },
    }
    return {
        collection: {
            "parameters": [_MODEL],
            "get": op(
                "list_versions",
                "The model's versions, newest first",
                {"200": _json(_ref("VersionList"), "The versions."), "404": _shared("404")},
            ),
            "post": post(
                "register_version",
                "Register a version: a finished training's output, or an uploaded archive (needs the train "
                "scope with tokens on)",
                {
                    "201": _json(_ref("VersionRecord"), "Registered (Location: the version)."),
                    "400": _error("No job or archive given, or an archive that is unsafe or unreadable."),
                    "404": _error("No such model or job."),
                    "408": _shared("408"),
                    "409": _error("The job is not a finished, successful training of this model."),
                    "413": _shared("413"),
                },
                requestBody=register_body,
            ),
        },
        f"{base}/v2/models/{{model}}/versions/{{version}}/activate": {
            "parameters": [_MODEL, _VERSION],
            "post": post(
                "activate_version",
                "Serve this version (every server replaces its processes one at a time)",
                {
                    "200": _json(_ref("ServingState"), "Activated."),
                    "404": _error("No such model or version."),
                    "408": _shared("408"),
                },
            ),
        },
        f"{base}/v2/models/{{model}}/reload": {
            "parameters": [_MODEL],
            "post": post(
                "reload_model",
                "Reload the model in every server, one process at a time (same version)",
                {
                    "202": _json(_ref("ServingState"), "Asked for."),
                    "404": _error("No such model."),
                    "408": _shared("408"),
                },
            ),
        },
    }


def delete_operation(used: set[str]) -> dict[str, Any]:
    """``DELETE .../versions/{version}`` (joined to the OIP metadata path item of that name: its
    errors have that path's shape, ``{"error": ...}``)."""

    def error(description: str) -> dict[str, Any]:
        return _json(_ref("OipError"), description)

    return {
        "tags": ["model versions"],
        "operationId": unique_id("delete_version", used),
        "summary": "Delete a version and its files (needs the admin scope with tokens on)",
        "responses": {
            "204": {"description": "Deleted."},
            "404": error("No such model or version."),
            "409": error("It is the active version."),
        },
    }


def version_access_answers(paths: dict[str, Any], *, base: str) -> None:
    """With tokens on: the 403 of the operations that check their scope themselves (their path is
    any token's), in place."""
    guarded = (
        (f"{base}/v2/models/{{model}}/versions/", "post", "train"),
        (f"{base}/v2/models/{{model}}/versions/{{version}}", "delete", "admin"),
    )
    for path, method, scope in guarded:
        op = paths[path][method]
        shape = "OipError" if method == "delete" else "Error"  # the path shared with OIP metadata: its shape
        op["responses"]["403"] = _json(_ref(shape), f"The token lacks the {scope} scope.")
