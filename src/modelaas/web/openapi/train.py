"""The training part of the OpenAPI document: the train routes of each model that trains.

Mirrors :mod:`modelaas.web.train` and the route table: for every model with a ``train``
method (and only when the train endpoint is on) one path per train route, the model's
name written literally like predict's, plus ``PUT <b>/v1/models/<m>/train`` for v1 models.
The job record schema describes :func:`modelaas.jobs.records.to_record` as it is.
"""

from __future__ import annotations

from typing import Any

from modelaas.jobs.records import JobStatus
from modelaas.model.adapters import ModelAdapter
from modelaas.runtime.media import JSON_MEDIA
from modelaas.web.openapi.models import ref, request_body, unique_id

_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_STATUSES = [s.value for s in JobStatus]

TRAIN_SCHEMAS: dict[str, Any] = {
    "JobRecord": {
        "type": "object",
        "description": (
            "A training job. The first keys are DEEPaaS's (uuid, date, args, status, message, result) "
            "with DEEPaaS's meanings; the others are modelaas's and always sent."
        ),
        "required": ["uuid", "date", "args", "status"],
        "properties": {
            "uuid": {**_STRING, "description": "The job's id."},
            "date": {
                **_STRING,
                "description": "When the job was submitted, as Python's str(datetime) in UTC without offset.",
                "examples": ["2026-11-27 15:14:42.902045"],
            },
            "args": {
                "type": "object",
                "description": (
                    "The arguments as the model receives them, defaults included. An uploaded file is shown as "
                    "{name, content_type, original_filename} (never a server path)."
                ),
            },
            "status": {
                **_STRING,
                "enum": _STATUSES,
                "description": (
                    "queued -> running -> done, error or cancelled; interrupted when the server running the job "
                    "stopped before the job finished."
                ),
            },
            "message": {
                **_STRING,
                "description": "Why the job ended as it did (error, cancelled, interrupted); absent otherwise.",
            },
            "result": {
                "type": "object",
                "description": "Present once the job has ended.",
                "required": ["output", "finish_date", "duration"],
                "properties": {
                    "output": {"description": "What train returned (any JSON value; null unless done)."},
                    "finish_date": {**_NULLABLE_STRING, "description": "When the job ended, like date."},
                    "duration": {
                        **_NULLABLE_STRING,
                        "description": "How long it ran, without the time spent queued, as str(timedelta).",
                        "examples": ["0:00:03.001368"],
                    },
                },
            },
            "model": {**_STRING, "description": "The model's name."},
            "progress": {
                "type": ["number", "null"],
                "minimum": 0,
                "maximum": 1,
                "description": "The latest progress the training reported (0..1); 1 when done.",
            },
            "metrics": {"type": "object", "description": "The latest metrics the training reported."},
            "created_at": {"type": "string", "format": "date-time", "description": "Submitted (ISO 8601, UTC)."},
            "started_at": {"type": ["string", "null"], "format": "date-time", "description": "Started running."},
            "finished_at": {"type": ["string", "null"], "format": "date-time", "description": "Ended."},
            "cancel_requested": {"type": "boolean", "description": "Whether a cancel was asked for."},
            "log_lines": {"type": "integer", "minimum": 0, "description": "How many lines the job's log holds."},
            "log_lines_dropped": {
                "type": "integer",
                "minimum": 0,
                "description": (
                    "How many lines of the training's output were not kept (the job store was unreachable "
                    "for long, or the log reached its size limit); each gap is marked by a line in the log."
                ),
            },
        },
        "if": {"properties": {"status": {"const": "done"}}, "required": ["status"]},
        "then": {"required": ["result"]},
    },
    "JobRecords": {"type": "array", "items": ref("JobRecord")},
    "JobFile": {
        "type": "object",
        "required": ["path", "size", "href"],
        "properties": {
            "path": {**_STRING, "description": "The file's path inside the job's output folder."},
            "size": {"type": "integer", "minimum": 0, "description": "Its size in bytes."},
            "href": {**_STRING, "description": "Where to download it (an absolute path on this server)."},
        },
    },
}

TRAIN_RESPONSES: dict[str, Any] = {
    "JobNotFound": {
        "description": "The model has no training job with this id.",
        "content": {JSON_MEDIA: {"schema": ref("Error")}},
    },
    "TooManyJobs": {
        "description": "Too many trainings are waiting on this server (--train-queue); retry after Retry-After "
        "seconds.",
        "headers": {"Retry-After": {"$ref": "#/components/headers/Retry-After"}},
        "content": {JSON_MEDIA: {"schema": ref("Error")}},
    },
}

_EVENTS_FORMAT = (
    "Server-Sent Events, oldest first: every change of the job's state (`event: state`, data "
    '`{"status": ..., "message"?: ...}`), progress report (`event: progress`, data `{"progress": number|null, '
    '"metrics": {...}}`) and log line (`event: log`, data `{"line": ...}`). Each event has an increasing `id`; '
    "the data is one line of JSON. The stream ends by itself after the event that gives the job its final state "
    "(a comment line is sent every 15 s of silence)."
)


_MALFORMED = (
    "The request is malformed (invalid JSON, a JSON body that is not an object, invalid multipart, too many parts)."
)


def _ok(schema: dict[str, Any], description: str, media: str = JSON_MEDIA) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _ok(ref("Error"), description)


def _shared(code: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{code}"}


_JOB = {
    "name": "job",
    "in": "path",
    "required": True,
    "schema": _STRING,
    "description": "The job's uuid, as its record gives it.",
}


def train_paths(models: list[ModelAdapter], *, base: str, v1_routes: bool, used: set[str]) -> dict[str, Any]:
    """The path items of the train routes of ``models`` (those without train have none)."""
    paths: dict[str, Any] = {}
    for m in models:
        if m.train_params is None:
            continue
        prefix = f"{base}/v2/models/{m.name}/train"
        job = f"{prefix}/{{job}}"
        op = _Operations(m.name, used)
        paths[f"{prefix}/"] = {
            "post": op(
                f"train_{m.name}",
                f"Start a training of {m.name}",
                {
                    "200": _ok(ref("JobRecord"), "The job is queued: its record (status queued or running)."),
                    "400": _error(_MALFORMED),
                    "408": _shared("408"),
                    "413": _shared("413"),
                    "422": _shared("422"),
                    "429": _shared("TooManyJobs"),
                },
                description=_submit_description(m),
                **_body(m),
            ),
            "get": op(
                f"list_jobs_{m.name}",
                f"The training jobs of {m.name}",
                {
                    "200": {
                        **_ok(
                            ref("JobRecords"),
                            "The model's jobs, oldest first (a bare array): all of them, or the page asked for.",
                        ),
                        "headers": {
                            "X-Total-Count": {
                                "description": "How many jobs the model has.",
                                "schema": {"type": "integer", "minimum": 0},
                            },
                            "Link": {
                                "description": 'With limit, where the next page is: <url>; rel="next".',
                                "schema": _STRING,
                            },
                        },
                    },
                    "400": _error("limit is not between 1 and 10000, or offset is not a whole number."),
                },
                parameters=[
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 10000},
                        "description": "Answer at most this many jobs (default: all of them, as DEEPaaS does).",
                    },
                    {
                        "name": "offset",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1, "default": 0},
                        "description": "Skip this many jobs first.",
                    },
                ],
            ),
        }
        paths[job] = {
            "parameters": [dict(_JOB)],
            "get": op(
                f"get_job_{m.name}",
                "One training job",
                {"200": _ok(ref("JobRecord"), "The job's record."), "404": _shared("JobNotFound")},
            ),
            "delete": op(
                f"delete_job_{m.name}",
                "Cancel an active job, or remove a finished one",
                {
                    "200": _ok(
                        ref("JobRecord"),
                        "An active job is cancelled: the answer comes once it has stopped (a few seconds at "
                        "most), with status cancelled, and the record stays listed. A finished job is removed "
                        "with its files: the answer is its last record.",
                    ),
                    "404": _shared("JobNotFound"),
                },
            ),
        }
        logs_headers = {
            "X-Next-Offset": {
                "description": "The offset to ask for next (the line after the last one sent).",
                "schema": {"type": "integer", "minimum": 0},
            },
            "X-Job-Status": {
                "description": "The job's status (read before the lines).",
                "schema": {**_STRING, "enum": _STATUSES},
            },
        }
        paths[f"{job}/logs"] = {
            "parameters": [dict(_JOB)],
            "get": op(
                f"get_job_logs_{m.name}",
                "The training's log",
                {
                    "200": {
                        **_ok(_STRING, "Log lines from line `offset` on, each ending with a newline.", "text/plain"),
                        "headers": logs_headers,
                    },
                    "400": _error("offset is not a whole number, zero or more."),
                    "404": _shared("JobNotFound"),
                },
                description="Everything the training printed or logged (its processes' output included), one line "
                "per line. Follow a running job by asking again from X-Next-Offset.",
                parameters=[
                    {
                        "name": "offset",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "default": 0},
                        "description": "The first line to send (0 is the first line of the log).",
                    }
                ],
            ),
        }
        paths[f"{job}/events"] = {
            "parameters": [dict(_JOB)],
            "get": op(
                f"get_job_events_{m.name}",
                "The training's events, live (Server-Sent Events)",
                {
                    "200": _ok(_STRING, _EVENTS_FORMAT, "text/event-stream"),
                    "400": _error("Last-Event-ID or after is not a whole number, zero or more."),
                    "404": _shared("JobNotFound"),
                    "503": {
                        **_error("--max-event-streams streams are open on this serving process already."),
                        "headers": {"Retry-After": {"$ref": "#/components/headers/Retry-After"}},
                    },
                },
                description="Replays the job's history, then follows it until it ends. A client that reconnects "
                "with Last-Event-ID (or `after`) gets every later event, once.",
                parameters=[
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {**_STRING, "pattern": "^[0-9]+$"},
                        "description": "Send the events after this id (what EventSource sends when it reconnects); "
                        "takes precedence over `after`.",
                    },
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "default": 0},
                        "description": "Send the events after this id (0: from the start).",
                    },
                ],
            ),
        }
        paths[f"{job}/files"] = {
            "parameters": [dict(_JOB)],
            "get": op(
                f"list_job_files_{m.name}",
                "The training's output files",
                {
                    "200": _ok(
                        {"type": "array", "items": ref("JobFile")},
                        "The files the training wrote to its output folder (symbolic links left out), by path.",
                    ),
                    "404": _shared("JobNotFound"),
                },
            ),
        }
        paths[f"{job}/files/{{path}}"] = {
            "parameters": [
                dict(_JOB),
                {
                    "name": "path",
                    "in": "path",
                    "required": True,
                    "schema": _STRING,
                    "description": "The file's path as listed (it may contain slashes).",
                },
            ],
            "get": op(
                f"get_job_file_{m.name}",
                "Download an output file",
                {
                    "200": {
                        "description": "The file, as an attachment.",
                        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    "404": _error(
                        "No such job, or no such file in the job's output folder (nothing outside it is served)."
                    ),
                },
            ),
        }
    if v1_routes:
        for m in models:
            if m.interface == "v1" and m.train_params is not None:
                paths[f"{base}/v1/models/{m.name}/train"] = {"put": _v1_train(m, used)}
    return paths


class _Operations:
    """Builds the operations of one model's train routes: its tag, unique operation ids."""

    def __init__(self, model: str, used: set[str]) -> None:
        self.model = model
        self.used = used

    def __call__(self, op_id: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "tags": [self.model],
            "operationId": unique_id(op_id, self.used),
            "summary": summary,
            **extra,
            "responses": responses,
        }


def _body(m: ModelAdapter) -> dict[str, Any]:
    assert m.train_params is not None
    body = request_body(m.train_params, v1=m.interface == "v1")
    return {"requestBody": body} if body is not None else {}


def _submit_description(m: ModelAdapter) -> str:
    text = (
        f"Queues a training of the {m.interface} model `{m.name}` and answers its record at once. Follow it "
        "with the job's routes: its record, logs, events and output files."
    )
    if m.interface == "v1":
        text += " A v1 model receives every argument as a string (another JSON value as its JSON text)."
    return text


def _v1_train(m: ModelAdapter, used: set[str]) -> dict[str, Any]:
    return {
        "tags": [m.name],
        "operationId": unique_id(f"train_v1_{m.name}", used),
        "summary": f"Train {m.name} and wait for the result (v1 route)",
        "description": (
            f"The DEEPaaS v1 route: runs a training of `{m.name}` as a job (listed on the v2 train routes) "
            "and answers when it ends. Arguments reach the model as strings."
        ),
        **_body(m),
        "responses": {
            "200": _ok({}, "The training's output (what train returned), once the job is done."),
            "400": _error(_MALFORMED),
            "408": _shared("408"),
            "413": _shared("413"),
            "422": _shared("422"),
            "429": _shared("TooManyJobs"),
            "500": _error("The training failed, was cancelled or interrupted: the message says why."),
        },
    }
