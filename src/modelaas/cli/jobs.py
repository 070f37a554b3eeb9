"""``modelaas jobs list|show|logs|cancel``: training jobs in the local store or on a server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from modelaas.cli.options import setting_options
from modelaas.cli.output import emit_json
from modelaas.errors import JobNotFound
from modelaas.jobs.records import to_record
from modelaas.settings import Settings

_remote = click.option("--remote", metavar="URL", help="The modelaas server to ask (default: the local job store).")
_token = click.option("--token", envvar="MODELAAS_TOKEN", help="Bearer token for --remote.")
_store = setting_options("data_dir", "jobs_db", "config_file")
"""The local job store's options, read as 'modelaas serve' reads them (flags, MODELAAS_*, config file)."""


@click.group()
def jobs() -> None:
    """Training jobs: of the server at --remote URL, or in this machine's job store
    (each command's --data-dir / --jobs-db, as for 'modelaas serve')."""


@contextmanager
def _local(**flags: Any) -> Iterator[Any]:
    from modelaas.jobs.store import open_store

    settings = Settings.load(flags)
    store = open_store(settings)
    store.migrate()
    try:
        yield store
    finally:
        store.close()


def _one_place(remote: str | None, local: dict[str, Any]) -> None:
    """--remote, or the options of a local job store: not both."""
    given = [name for name, value in local.items() if value is not None]
    if remote and given:
        options = " and ".join("--" + name.replace("_", "-") for name in given)
        verb = "are" if len(given) > 1 else "is"
        raise click.UsageError(f"{options} {verb} for a local job store: not with --remote.")


@contextmanager
def _client(remote: str, token: str | None) -> Iterator[Any]:
    from modelaas.client import Client

    with Client(remote, token=token) as client:
        yield client


def _remote_job(client: Any, job_id: str, model: str | None) -> Any:
    names = [model] if model else [m["name"] for m in client.models()]
    for name in names:
        for job in client.jobs(name):
            if job.id == job_id:
                return job
    raise JobNotFound(model or "any model", job_id)


@jobs.command("list")
@click.argument("model", required=False)
@_remote
@_token
@_store
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def list_jobs(model: str | None, remote: str | None, token: str | None, as_json: bool, **local: Any) -> int:
    """List training jobs (of MODEL, or of every model), oldest first."""
    _one_place(remote, local)
    if remote:
        with _client(remote, token) as client:
            names = [model] if model else [m["name"] for m in client.models()]
            records = [job.record for name in names for job in client.jobs(name)]
    else:
        with _local(**local) as store:
            records = [to_record(job) for job in store.list(model)]
    if as_json:
        emit_json(records, None)
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("uuid", "model", "status", "progress", "submitted (UTC)", "message")
    for r in records:
        progress = "" if r.get("progress") is None else f"{r['progress']:.0%}"
        table.add_row(r["uuid"], r.get("model", ""), r["status"], progress, r["date"], r.get("message") or "")
    Console().print(table)
    return 0


@jobs.command("show")
@click.argument("job_id")
@click.option("--model", help="The job's model (saves a search on a remote server).")
@_remote
@_token
@_store
def show(job_id: str, model: str | None, remote: str | None, token: str | None, **local: Any) -> int:
    """Print a job's record as JSON."""
    _one_place(remote, local)
    if remote:
        with _client(remote, token) as client:
            emit_json(_remote_job(client, job_id, model).record, None)
        return 0
    with _local(**local) as store:
        job = store.get(job_id)
        if job is None:
            raise JobNotFound(model or "any model", job_id)
        emit_json(to_record(job), None)
    return 0


@jobs.command("logs")
@click.argument("job_id")
@click.option("--model", help="The job's model (saves a search on a remote server).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job ends.")
@_remote
@_token
@_store
def logs(
    job_id: str, model: str | None, follow: bool, remote: str | None, token: str | None, **local: Any
) -> int:
    """Print a job's captured output."""
    _one_place(remote, local)
    if remote:
        with _client(remote, token) as client:
            job = _remote_job(client, job_id, model)
            for line in job.follow_logs() if follow else job.all_logs():
                click.echo(line)
        return 0
    import time

    with _local(**local) as store:
        if store.get(job_id) is None:
            raise JobNotFound(model or "any model", job_id)
        offset = 0
        while True:
            job = store.get(job_id)  # before the lines: once it has ended, they are all stored
            lines = store.log_lines(job_id, offset)
            for line in lines:
                click.echo(line)
            offset += len(lines)
            if lines:
                continue
            if not follow or job is None or job.status.is_terminal:
                return 0
            time.sleep(0.5)


@jobs.command("cancel")
@click.argument("job_id")
@click.option("--model", help="The job's model (saves a search on a remote server).")
@_remote
@_token
@_store
def cancel(job_id: str, model: str | None, remote: str | None, token: str | None, **local: Any) -> int:
    """Cancel an active job (its server stops it within seconds)."""
    _one_place(remote, local)
    if remote:
        with _client(remote, token) as client:
            emit_json(_remote_job(client, job_id, model).cancel(), None)
        return 0
    with _local(**local) as store:
        job = store.request_cancel(job_id)
        if job is None:
            raise JobNotFound(model or "any model", job_id)
        emit_json(to_record(job), None)
    return 0
