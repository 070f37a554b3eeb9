"""``modelaas jobs list|show|logs|cancel|delete``: training jobs in the local store or on a server.

A job is named by its id or any unique start of it; where the jobs are is a
:class:`~modelaas.cli.job_sources.JobSource` (the local store, or ``--remote URL``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from modelaas.cli.job_sources import JobSource
from modelaas.cli.options import setting_options
from modelaas.cli.output import emit_json
from modelaas.jobs.records import JobStatus
from modelaas.settings import Settings

_remote = click.option("--remote", metavar="URL", help="The modelaas server to ask (default: the local job store).")
_token = click.option("--token", envvar="MODELAAS_TOKEN", help="Bearer token for --remote.")
_store = setting_options("data_dir", "jobs_db", "config_file")
"""The local job store's options, read as 'modelaas serve' reads them (flags, MODELAAS_*, config file)."""
_model = click.option("--model", help="The job's model (only its jobs are searched).")
_job_id = click.argument("job_id", metavar="JOB")


def _where(func: Callable[..., Any]) -> Callable[..., Any]:
    """--remote and --token, or the local store's options."""
    return _remote(_token(_store(func)))


@click.group()
def jobs() -> None:
    """Training jobs: of the server at --remote URL, or in this machine's job store
    (each command's --data-dir / --jobs-db, as for 'modelaas serve'). JOB is a job's id
    or any unique start of it."""


@contextmanager
def _source(remote: str | None, token: str | None, local: dict[str, Any]) -> Iterator[JobSource]:
    """The server at ``remote``, else the job store of the local options; --remote with them is an error."""
    from modelaas.cli.job_sources import LocalJobs, RemoteJobs

    given = [name for name, value in local.items() if value is not None]
    if remote and given:
        options = " and ".join("--" + name.replace("_", "-") for name in given)
        verb = "are" if len(given) > 1 else "is"
        raise click.UsageError(f"{options} {verb} for a local job store: not with --remote.")
    source: JobSource = RemoteJobs(remote, token) if remote else LocalJobs(Settings.load(local))
    try:
        yield source
    finally:
        source.close()


@jobs.command("list")
@click.argument("model", required=False)
@_where
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def list_jobs(model: str | None, remote: str | None, token: str | None, as_json: bool, **local: Any) -> int:
    """List training jobs (of MODEL, or of every model), oldest first."""
    with _source(remote, token, local) as source:
        records = source.records(model)
        where = source.where
    if as_json:
        emit_json(records, None)
        return 0
    if not records:
        click.echo(f"No training jobs{' of ' + repr(model) if model else ''} {where}.", err=True)
        return 0
    _print_table(
        ["id", "model", "status", "progress", "submitted (UTC)", "message"],
        [
            [
                r["uuid"],
                r.get("model", ""),
                r["status"],
                "" if r.get("progress") is None else f"{r['progress']:.0%}",
                r.get("date") or "",
                r.get("message") or "",
            ]
            for r in records
        ],
    )
    return 0


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    """At a terminal, a table whose first column (the ids) is never cut; piped, plain columns
    of whole values (for grep, cut and awk), one row a line."""
    if not sys.stdout.isatty():
        widths = [max(len(str(v)) for v in column) for column in zip(header, *rows, strict=True)]
        for row in [header, *rows]:
            cells = [str(v).replace("\n", " ") for v in row]
            click.echo("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    width = max([len(header[0]), *(len(r[0]) for r in rows)])
    table.add_column(header[0], no_wrap=True, min_width=width)
    for title in header[1:]:
        table.add_column(title, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@jobs.command("show")
@_job_id
@_model
@_where
def show(job_id: str, model: str | None, remote: str | None, token: str | None, **local: Any) -> int:
    """Print a job's record as JSON."""
    with _source(remote, token, local) as source:
        emit_json(source.record(source.find(job_id, model)), None)
    return 0


@jobs.command("logs")
@_job_id
@_model
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job ends.")
@_where
def logs(job_id: str, model: str | None, follow: bool, remote: str | None, token: str | None, **local: Any) -> int:
    """Print a job's captured output."""
    with _source(remote, token, local) as source:
        for line in source.log_lines(source.find(job_id, model), follow):
            click.echo(line)
    return 0


@jobs.command("cancel")
@_job_id
@_model
@_where
def cancel(job_id: str, model: str | None, remote: str | None, token: str | None, **local: Any) -> int:
    """Cancel an active job; print its record once its server has stopped it."""
    with _source(remote, token, local) as source:
        record = source.cancel(source.find(job_id, model))
    emit_json(record, None)
    if JobStatus(record["status"]).is_active:
        click.echo(
            f"Job {record['uuid']} was asked to stop and is still {record['status']}; its server stops it "
            f"(follow it with 'modelaas jobs show {record['uuid']}{_again(remote)}').",
            err=True,
        )
    return 0


@jobs.command("delete")
@_job_id
@_model
@_where
def delete(job_id: str, model: str | None, remote: str | None, token: str | None, **local: Any) -> int:
    """Delete a job, its log and files (cancelling it first)."""
    with _source(remote, token, local) as source:
        job = source.find(job_id, model)
        source.delete(job)
    click.echo(f"Deleted job {job.id}.", err=True)
    return 0


def _again(remote: str | None) -> str:
    return f" --remote {remote}" if remote else ""
