"""A running modelaas server (``--remote URL``): options from its API document, work done there."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click

from modelaas.cli.output import emit_bytes, emit_json, interactive
from modelaas.cli.sources import Run, Target
from modelaas.errors import ModelaasError, ModelNotFound, NotImplementedByModel
from modelaas.model.files import File
from modelaas.model.params import Kind, Param

_KINDS = {"integer": Kind.INTEGER, "number": Kind.NUMBER, "boolean": Kind.BOOLEAN, "object": Kind.OBJECT}


class RemoteModels:
    def __init__(self, url: str, *, token: str | None = None) -> None:
        self.url = url
        self.token = token

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        from modelaas.client import Client

        with Client(self.url, token=self.token) as client:
            yield client

    def names(self) -> list[str]:
        with self.client() as client:
            return [m["name"] for m in client.models()]

    def resolve(self, name: str, method: str) -> Target:
        """The model ``name`` on the server, its arguments read from the server's API document."""
        with self.client() as client:
            names = [m["name"] for m in client.models()]
            if name not in names:
                raise ModelNotFound(name, names)
            document = client.openapi()
        path = f"/v2/models/{name}/{method}/"
        operation = next((ops.get("post") for p, ops in document.get("paths", {}).items() if p.endswith(path)), None)
        if operation is None:
            raise NotImplementedByModel(f"Model {name!r} on {self.url} does not offer {method}.")
        return Target(name=name, method=method, params=params_from_operation(operation))

    def predict(self, target: Target, raw: Mapping[str, Any], run: Run) -> int:
        args = _wire(raw)
        accept = args.pop("accept", None)
        with self.client() as client:
            answer = client.predict(target.name, accept=accept, **args)
        if isinstance(answer, bytes):
            emit_bytes(answer, str(accept), run.output)
        else:
            emit_json(answer, run.output)
        return 0

    def train(self, target: Target, raw: Mapping[str, Any], run: Run) -> int:
        with self.client() as client:
            job = client.train(target.name, **_wire(raw))
            click.echo(f"Training job {job.id} submitted ({job.status}).", err=True)
            if run.detach:
                emit_json(job.record, run.output)
                return 0
            try:
                record = follow(job)
            except KeyboardInterrupt:
                if interactive() and click.confirm("\nCancel the training job?", err=True, default=False):
                    record = job.cancel()
                    click.echo(f"Job {job.id} is {record['status']}.", err=True)
                else:
                    where = f"{job.id} --remote {self.url}"
                    click.echo(
                        f"Job {job.id} keeps running; follow it with 'modelaas jobs logs -f {where}', "
                        f"see it with 'modelaas jobs show {where}'.",
                        err=True,
                    )
                return 130
        if record["status"] == "done":
            emit_json(record.get("result", {}).get("output"), run.output)
            return 0
        raise ModelaasError(ended(job.id, record["status"], record.get("message")))


_ENDINGS = {"error": "failed", "cancelled": "was cancelled", "interrupted": "was interrupted"}


def ended(job_id: str, status: str, message: str | None) -> str:
    """``Training job <id> failed: <message>``: how a job that did not succeed ended."""
    text = f"Training job {job_id} {_ENDINGS.get(status, 'ended ' + status)}"
    return f"{text}: {message}" if message else f"{text}."


def params_from_operation(operation: Mapping[str, Any]) -> tuple[Param, ...]:
    """The arguments of an OpenAPI operation of ours (its request body, plus ``accept``)."""
    content: dict[str, Any] = (operation.get("requestBody") or {}).get("content") or {}
    body: dict[str, Any] = next(iter(content.values())).get("schema", {}) if content else {}
    required = set(body.get("required", ()))
    params = [_param(name, schema, name in required) for name, schema in body.get("properties", {}).items()]
    for spec in operation.get("parameters", ()):
        if spec.get("name") == "accept" and spec.get("in") == "query":
            params.append(_param("accept", spec.get("schema", {}), False))
    return tuple(params)


def _param(name: str, schema: Mapping[str, Any], required: bool) -> Param:
    def kind_of(s: Mapping[str, Any]) -> Kind:
        if s.get("format") == "binary":
            return Kind.FILE
        return _KINDS.get(str(s.get("type")), Kind.STRING)

    is_array = schema.get("type") == "array"
    item_schema = schema.get("items", {}) if is_array else schema
    choices = item_schema.get("enum")
    keyword = name.replace("-", "_")  # the document names what clients send; --top_k for --top-k too
    return Param(
        name=keyword if keyword.isidentifier() else name,
        wire_name=name,
        kind=Kind.ARRAY if is_array else kind_of(schema),
        item=kind_of(item_schema) if is_array else None,
        required=required,
        default=schema.get("default", Param.__dataclass_fields__["default"].default),
        description=str(schema.get("description", "")),
        choices=tuple(choices) if choices else None,
        minimum=schema.get("minimum", schema.get("exclusiveMinimum")),
        maximum=schema.get("maximum", schema.get("exclusiveMaximum")),
        exclusive_minimum="exclusiveMinimum" in schema,
        exclusive_maximum="exclusiveMaximum" in schema,
    )


def _wire(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Local files become paths the client uploads."""

    def one(value: Any) -> Any:
        if isinstance(value, File):
            return Path(value.filename)
        if isinstance(value, list):
            return [one(v) for v in value]
        return value

    return {key: one(value) for key, value in raw.items()}


def follow(job: Any) -> dict[str, Any]:
    """Show a job's progress (a bar at a terminal) and log lines until it ends."""
    progress = None
    task = None
    if interactive():
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn

        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            console=Console(stderr=True),
        )
        progress.start()
        task = progress.add_task(job.status, total=1.0)
    try:
        for event in job.events():
            if event.kind == "log":
                (progress.console.print if progress else _err)(event.data.get("line", ""))
            elif event.kind == "progress" and progress is not None and task is not None:
                metrics = " ".join(f"{k}={v}" for k, v in (event.data.get("metrics") or {}).items())
                done = event.data.get("progress")
                progress.update(task, completed=done if done is not None else 0, description=metrics or "running")
            elif event.kind == "state":
                if progress is not None and task is not None:
                    progress.update(task, description=event.data["status"])
                else:
                    _err(f"[{event.data['status']}] {event.data.get('message', '')}".rstrip())
    finally:
        if progress is not None:
            progress.stop()
    return job.refresh()


def _err(text: str) -> None:
    click.echo(text, err=True)
