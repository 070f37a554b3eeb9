"""Where ``modelaas jobs`` finds training jobs: this machine's job store, or a server.

:class:`LocalJobs` and :class:`RemoteJobs` (``--remote URL``) answer the same questions;
the commands pick one from their options once. A job is named by its id or by any unique
start of it (``3f2a``), as in git; a start shared by several jobs is an error that lists them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import click

from modelaas.errors import ClientError, JobNotFound
from modelaas.jobs.records import JobStatus
from modelaas.settings import Settings

SHOWN_CANDIDATES = 10
"""Most ids an ambiguous-prefix error lists."""
COUNTED_CANDIDATES = 1000
"""Most ids a local look-up by prefix reads (beyond it: "more than 1000")."""


class JobSource(Protocol):
    where: str
    """Where the jobs are, for messages: ``in the job store /path/jobs.sqlite3`` / ``on http://...``."""

    def records(self, model: str | None) -> list[dict[str, Any]]:
        """The jobs' records (of ``model``, or of every model), oldest first."""

    def find(self, job_id: str, model: str | None) -> Any:
        """The job whose id is ``job_id`` or starts with it; JobNotFound / ambiguous ClientError."""

    def record(self, job: Any) -> dict[str, Any]: ...

    def log_lines(self, job: Any, follow: bool) -> Iterator[str]: ...

    def cancel(self, job: Any) -> dict[str, Any]:
        """Cancel an active job and wait (seconds) until it has stopped; its record then."""

    def delete(self, job: Any) -> None:
        """Remove an ended job, its log and its files (an active one is cancelled first);
        ClientError if it is still running after that."""

    def close(self) -> None: ...


def match(
    job_id: str, candidates: Iterable[str], *, model: str | None, where: str, read_at_most: int | None = None
) -> str:
    """The one candidate that is ``job_id`` or starts with it (``read_at_most``: the candidates
    were cut at that many, plus one)."""
    found = sorted({c for c in candidates if c.startswith(job_id)}) if job_id else []
    if job_id in found:
        return job_id
    if not found:
        raise JobNotFound(model, job_id, where=where)
    if len(found) == 1:
        return found[0]
    shown = ", ".join(found[:SHOWN_CANDIDATES]) + (", ..." if len(found) > SHOWN_CANDIDATES else "")
    count = f"more than {read_at_most}" if read_at_most is not None and len(found) > read_at_most else len(found)
    raise ClientError(f"{job_id!r} is the start of {count} job ids {where}: {shown}. Give more of it.")


class LocalJobs:
    """The job store of these settings (``--data-dir`` / ``--jobs-db``)."""

    def __init__(self, settings: Settings) -> None:
        from modelaas.jobs.database import relative_sqlite_warning, store_name
        from modelaas.jobs.service import JobService
        from modelaas.jobs.store import open_store

        warning = relative_sqlite_warning(settings.jobs_db)
        if warning:
            click.echo(f"Warning: {warning}", err=True)
        if not settings.jobs_db:
            settings.make_data_dir()
        self.store = open_store(settings)
        self.store.migrate()
        self.where = f"in the job store {store_name(self.store.url)}"
        self.service = JobService(settings, self.store, server_id="")

    def records(self, model: str | None) -> list[dict[str, Any]]:
        from modelaas.jobs.records import to_record

        return [to_record(job) for job in self.store.list(model)]

    def find(self, job_id: str, model: str | None) -> Any:
        ids = self.store.ids_starting(job_id, model=model, limit=COUNTED_CANDIDATES + 1)
        found = self.store.get(match(job_id, ids, model=model, where=self.where, read_at_most=COUNTED_CANDIDATES))
        if found is None:  # deleted meanwhile
            raise JobNotFound(model, job_id, where=self.where)
        return found

    def record(self, job: Any) -> dict[str, Any]:
        from modelaas.jobs.records import to_record

        return to_record(job)

    def log_lines(self, job: Any, follow: bool) -> Iterator[str]:
        offset = 0
        while True:
            current = self.store.get(job.id)  # before the lines: once it has ended, they are all stored
            lines = self.store.log_lines(job.id, offset)
            yield from lines
            offset += len(lines)
            if lines:
                continue
            if not follow or current is None or current.status.is_terminal:
                return
            time.sleep(0.5)

    def cancel(self, job: Any) -> dict[str, Any]:
        return self.record(self.service.cancel(job.model, job.id))  # its server stops it; waited for

    def delete(self, job: Any) -> None:
        if job.status.is_active:
            job = self.service.cancel(job.model, job.id)
        if job.status.is_active:
            raise still_running(job.id, "")
        self.service.delete(job.model, job.id)

    def close(self) -> None:
        self.store.close()


class RemoteJobs:
    """The jobs of the server at ``url``."""

    def __init__(self, url: str, token: str | None) -> None:
        from modelaas.client import Client

        self.client = Client(url, token=token)
        self.url = url
        self.where = f"on {url}"

    def _models(self, model: str | None) -> list[str]:
        return [model] if model else [m["name"] for m in self.client.models()]

    def records(self, model: str | None) -> list[dict[str, Any]]:
        return [job.record for name in self._models(model) for job in self.client.jobs(name)]

    def find(self, job_id: str, model: str | None) -> Any:
        jobs = {job.id: job for name in self._models(model) for job in self.client.jobs(name)}
        return jobs[match(job_id, jobs, model=model, where=self.where)]

    def record(self, job: Any) -> dict[str, Any]:
        return dict(job.record)

    def log_lines(self, job: Any, follow: bool) -> Iterator[str]:
        return iter(job.follow_logs() if follow else job.all_logs())

    def cancel(self, job: Any) -> dict[str, Any]:
        return dict(job.cancel())  # the server waits until it has stopped

    def delete(self, job: Any) -> None:
        if JobStatus(job.cancel()["status"]).is_active:
            raise still_running(job.id, f" --remote {self.url}")
        job.delete()

    def close(self) -> None:
        self.client.close()


def still_running(job_id: str, where: str) -> ClientError:
    return ClientError(
        f"Job {job_id} was asked to stop but is still running; delete it once it has ended "
        f"('modelaas jobs show {job_id}{where}' tells)."
    )
