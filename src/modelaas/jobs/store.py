"""The job store: SQLite in the data directory by default, PostgreSQL when configured.

Every process that touches jobs (serving processes, the scheduler, training processes)
opens its own :class:`JobStore` on the same URL. Writes that change a job's state are
compare-and-set, so concurrent servers never run a job twice or overwrite a final state.
Each state change, progress report and log line is also appended to the job's event
list, which the events stream and the logs endpoint read.

Reads never block writers, and transactions that fail for a passing reason are retried
(:mod:`modelaas.jobs.database`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from modelaas.jobs import schema
from modelaas.jobs.database import Database, first_line, is_passing, store_url
from modelaas.jobs.records import TERMINAL, Job, JobStatus, utcnow
from modelaas.jobs.rows import from_row, to_row, utc
from modelaas.settings import Settings

__all__ = ["ACTIVE", "Event", "JobGone", "JobStore", "QueueFull", "open_store", "store_url"]

ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
RETRY_LONG_DELAY = 10.0
"""Longest pause between attempts of callers that wait for the store to come back."""

log = logging.getLogger("modelaas.jobs")


def open_store(settings: Settings) -> JobStore:
    """The settings' job store (SQLite in the data dir, or ``--jobs-db``), not yet migrated."""
    return JobStore(store_url(settings.jobs_db, settings.data_dir))


class JobGone(LookupError):
    """The job was deleted (while something was still writing to it)."""


class QueueFull(Exception):
    """A new job would pass its server's limit of queued jobs."""

    def __init__(self, waiting: int) -> None:
        super().__init__(f"{waiting} job{' is' if waiting == 1 else 's are'} queued already")
        self.waiting = waiting


@dataclass(frozen=True)
class Event:
    id: int
    job_id: str
    kind: str
    """``state``, ``progress`` or ``log``."""
    data: dict[str, Any]
    at: dt.datetime


class JobStore(Database):
    """The jobs, their events and the servers, in one database."""

    # ------------------------------------------------------------------ jobs
    def create(self, job: Job, *, queue_limit: int | None = None) -> Job:
        """Store a new job; with ``queue_limit``, raise :class:`QueueFull` instead when its
        owner has that many queued jobs already (checked and inserted in one transaction)."""
        t = schema.jobs

        def work(conn: sa.Connection) -> None:
            exists = conn.execute(sa.select(t.c.id).where(t.c.id == job.id)).first()
            if exists is not None:  # a retry of a commit that did happen
                return
            if queue_limit is not None:
                if conn.dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE serialises writers already
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key("queue", job.owner))))
                waiting = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(t)
                    .where(t.c.status == JobStatus.QUEUED.value, t.c.owner == job.owner)
                ).scalar()
                if int(waiting or 0) >= queue_limit:
                    raise QueueFull(int(waiting or 0))
            conn.execute(t.insert().values(**to_row(job)))
            _event(conn, job.id, "state", {"status": job.status.value})

        self._write(work, repeatable=True)
        return job

    def get(self, job_id: str) -> Job | None:
        row = self._read(
            lambda conn: conn.execute(sa.select(schema.jobs).where(schema.jobs.c.id == job_id)).mappings().first()
        )
        return from_row(row) if row else None

    def ids_starting(self, prefix: str, *, model: str | None = None, limit: int = 10) -> list[str]:
        """Ids of jobs (of ``model``) that start with ``prefix``: up to ``limit`` of them, sorted."""
        if not prefix or not all(c.isalnum() or c == "-" for c in prefix):  # ids have no LIKE wildcards
            return []
        query = _filter(sa.select(schema.jobs.c.id), model=model).where(schema.jobs.c.id.startswith(prefix))
        query = query.order_by(schema.jobs.c.id).limit(limit)
        return [str(row[0]) for row in self._read(lambda conn: conn.execute(query).all())]

    def count(
        self,
        model: str | None = None,
        *,
        statuses: Iterable[JobStatus] | None = None,
        owner: str | None = None,
        submitter: str | None = None,
    ) -> int:
        query = _filter(
            sa.select(sa.func.count()).select_from(schema.jobs),
            model=model,
            statuses=statuses,
            owner=owner,
            submitter=submitter,
        )
        return int(self._read(lambda conn: conn.execute(query).scalar()) or 0)

    def claim_next(self, owner: str, runner: dict[str, Any]) -> Job | None:
        """Move the oldest queued job of ``owner`` to running; None if there is none."""
        t = schema.jobs

        def work(conn: sa.Connection) -> str | None:
            candidate = conn.execute(
                sa.select(t.c.id)
                .where(t.c.status == JobStatus.QUEUED.value, t.c.owner == owner)
                .order_by(t.c.created_at, t.c.id)
                .limit(1)
            ).scalar()
            if candidate is None:
                return None
            now = utcnow()
            changed = conn.execute(
                t.update()
                .where(t.c.id == candidate, t.c.status == JobStatus.QUEUED.value)
                .values(status=JobStatus.RUNNING.value, started_at=now, heartbeat_at=now, runner=runner)
            ).rowcount
            if not changed:
                return None
            _event(conn, candidate, "state", {"status": JobStatus.RUNNING.value})
            return str(candidate)

        claimed = self._write(work)
        return None if claimed is None else self.get(claimed)

    def set_runner(self, job_id: str, runner: dict[str, Any]) -> None:
        self._write(
            lambda conn: conn.execute(schema.jobs.update().where(schema.jobs.c.id == job_id).values(runner=runner)),
            repeatable=True,
        )

    def finish(self, job_id: str, status: JobStatus, *, result: Any = None, message: str | None = None) -> Job | None:
        """Give an active job its final state; returns None if it had one already."""
        if status not in TERMINAL:
            raise ValueError(f"{status} is not a final state")
        t = schema.jobs

        def work(conn: sa.Connection) -> bool:
            values: dict[str, Any] = {"status": status.value, "finished_at": utcnow(), "message": message}
            if status is JobStatus.DONE:
                values["result"] = result
                values["progress"] = 1.0
            changed = conn.execute(t.update().where(t.c.id == job_id, t.c.status.in_(ACTIVE)).values(**values)).rowcount
            if not changed:
                return False
            data: dict[str, Any] = {"status": status.value}
            if message:
                data["message"] = message
            _event(conn, job_id, "state", data)
            return True

        return self.get(job_id) if self._write(work, repeatable=True) else None

    def report(self, job_id: str, progress: float | None = None, metrics: dict[str, Any] | None = None) -> None:
        """Record progress (0..1) and/or the latest metrics of a running job."""
        t = schema.jobs

        def work(conn: sa.Connection) -> None:
            values: dict[str, Any] = {"heartbeat_at": utcnow()}
            if progress is not None:
                values["progress"] = progress
            if metrics:
                current = conn.execute(sa.select(t.c.metrics).where(t.c.id == job_id)).scalar() or {}
                values["metrics"] = {**current, **metrics}
            conn.execute(t.update().where(t.c.id == job_id, t.c.status.in_(ACTIVE)).values(**values))
            _event(conn, job_id, "progress", {"progress": progress, "metrics": metrics or {}})

        self._write(work, repeatable=True)  # a repeated progress event says nothing new

    def request_cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once; ask the runner of a running one to stop it."""
        t = schema.jobs

        def work(conn: sa.Connection) -> None:
            now = utcnow()
            queued = conn.execute(
                t.update()
                .where(t.c.id == job_id, t.c.status == JobStatus.QUEUED.value)
                .values(status=JobStatus.CANCELLED.value, finished_at=now, cancel_requested=True)
            ).rowcount
            if queued:
                _event(conn, job_id, "state", {"status": JobStatus.CANCELLED.value})
            else:
                conn.execute(
                    t.update()
                    .where(t.c.id == job_id, t.c.status == JobStatus.RUNNING.value)
                    .values(cancel_requested=True)
                )

        self._write(work, repeatable=True)
        return self.get(job_id)

    def delete(self, job_id: str) -> bool:
        def work(conn: sa.Connection) -> bool:
            gone = conn.execute(schema.jobs.delete().where(schema.jobs.c.id == job_id)).rowcount
            conn.execute(schema.events.delete().where(schema.events.c.job_id == job_id))
            return bool(gone)

        return self._write(work, repeatable=True)

    def heartbeat_jobs(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            ids = list(job_ids)
            self._write(
                lambda conn: conn.execute(
                    schema.jobs.update().where(schema.jobs.c.id.in_(ids)).values(heartbeat_at=utcnow())
                ),
                repeatable=True,
            )

    # ---------------------------------------------------------------- events
    def add_event(self, job_id: str, kind: str, data: dict[str, Any]) -> None:
        self._write(lambda conn: _event(conn, job_id, kind, data))

    def add_logs(self, job_id: str, lines: Sequence[str], *, first: int | None = None, dropped: int = 0) -> int:
        """Append ``lines`` to the job's log; answers the number the next line will get.

        ``first``: the number the first of ``lines`` must get. A batch sent again after a
        commit that was lost on the way is then recognised and not stored twice; a batch
        that does not follow the log raises ValueError. None: at the end of the log.
        ``dropped``: lines of output lost before these, added to the job's count.
        Raises :class:`JobGone` when the job no longer exists.
        """
        t = schema.jobs
        now = utcnow()

        def work(conn: sa.Connection) -> int:
            query = sa.select(t.c.log_lines).where(t.c.id == job_id)
            if conn.dialect.name == "postgresql":  # see _lock_job
                query = query.with_for_update()
            current = conn.execute(query).scalar()
            if current is None:
                raise JobGone(job_id)
            start = current if first is None else first
            if first is not None and current != first:
                if lines and current >= first + len(lines):
                    return int(current)  # stored already: the commit did happen
                raise ValueError(f"The log of job {job_id} is at line {current}, not {first}.")
            if lines:
                rows = [
                    {"job_id": job_id, "kind": "log", "data": {"line": line}, "at": now, "line": start + i}
                    for i, line in enumerate(lines)
                ]
                conn.execute(schema.events.insert(), rows)
            conn.execute(
                t.update()
                .where(t.c.id == job_id)
                .values(log_lines=start + len(lines), log_dropped=t.c.log_dropped + dropped)
            )
            return start + len(lines)

        return self._write(work, repeatable=first is not None)

    def log_lines(self, job_id: str, offset: int = 0, limit: int = 10000) -> list[str]:
        """Lines ``offset`` to ``offset + limit - 1`` of the job's log (found by number, not counted)."""
        e = schema.events
        query = (
            sa.select(e.c.data)
            .where(e.c.job_id == job_id, e.c.line >= offset, e.c.line < offset + limit)
            .order_by(e.c.line)
        )
        rows = self._read(lambda conn: conn.execute(query).scalars().all())
        return [str(data.get("line", "")) for data in rows]

    def finish_eventually(
        self, job_id: str, status: JobStatus, *, result: Any = None, message: str | None = None
    ) -> Job | None:
        """:meth:`finish`, retried for as long as the store cannot be reached.

        For a training's end, which nothing else could record: it is stored once the store
        is back (the caller waits until then).
        """
        delay = 1.0
        while True:
            try:
                return self.finish(job_id, status, result=result, message=message)
            except sa.exc.DBAPIError as exc:
                if not is_passing(exc):
                    raise
                log.warning("Job %s: the job store cannot be reached (%s); retrying.", job_id, first_line(exc))
            time.sleep(delay)
            delay = min(delay * 2, RETRY_LONG_DELAY)

    def events(
        self, job_id: str, *, after: int = 0, limit: int = 1000, kinds: Iterable[str] | None = None
    ) -> list[Event]:
        """The job's events with ids above ``after``, oldest first."""
        e = schema.events
        query = sa.select(e).where(e.c.job_id == job_id, e.c.id > after).order_by(e.c.id).limit(limit)
        if kinds is not None:
            query = query.where(e.c.kind.in_(list(kinds)))
        rows = self._read(lambda conn: conn.execute(query).mappings().all())
        return [Event(int(r["id"]), r["job_id"], r["kind"], dict(r["data"]), utc(r["at"])) for r in rows]

    # --------------------------------------------------------------- servers
    def register_server(self, server_id: str, *, pid: int | None = None) -> None:
        """Announce a server (this process unless ``pid`` says otherwise) on this host."""
        now = utcnow()
        s = schema.servers

        def work(conn: sa.Connection) -> None:
            if conn.execute(sa.select(s.c.id).where(s.c.id == server_id)).first() is None:
                host = socket.gethostname()
                conn.execute(
                    s.insert().values(id=server_id, host=host, pid=pid or os.getpid(), started_at=now, heartbeat_at=now)
                )

        self._write(work, repeatable=True)

    def heartbeat_server(self, server_id: str) -> None:
        self._write(
            lambda conn: conn.execute(
                schema.servers.update().where(schema.servers.c.id == server_id).values(heartbeat_at=utcnow())
            ),
            repeatable=True,
        )

    def remove_server(self, server_id: str) -> None:
        self._write(
            lambda conn: conn.execute(schema.servers.delete().where(schema.servers.c.id == server_id)),
            repeatable=True,
        )

    def interrupt_orphans(
        self, *, stale_after: float, pid_alive: Callable[[int], bool], exclude: str | None = None
    ) -> list[Job]:
        """Mark ``interrupted`` the active jobs of servers that are gone.

        A server is gone when it has no row, when it ran on this host and its process no
        longer exists, or when it has not sent a heartbeat for ``stale_after`` seconds.
        """
        host = socket.gethostname()
        limit = utcnow() - dt.timedelta(seconds=stale_after)

        def look(conn: sa.Connection) -> tuple[list[Any], list[Any]]:
            servers = conn.execute(sa.select(schema.servers)).mappings().all()
            owners = conn.execute(
                sa.select(schema.jobs.c.id, schema.jobs.c.owner).where(schema.jobs.c.status.in_(ACTIVE))
            ).all()
            return list(servers), list(owners)

        servers, owners = self._read(look)
        alive_servers = {
            r["id"]
            for r in servers
            if utc(r["heartbeat_at"]) >= limit and not (r["host"] == host and not pid_alive(int(r["pid"])))
        }
        interrupted = []
        for job_id, owner in owners:
            if owner == exclude or owner in alive_servers:
                continue
            job = self.finish(
                job_id,
                JobStatus.INTERRUPTED,
                message="The server running this job stopped before the job finished.",
            )
            if job is not None:
                interrupted.append(job)
        self._write(  # forget servers that are gone
            lambda conn: conn.execute(schema.servers.delete().where(schema.servers.c.heartbeat_at < limit)),
            repeatable=True,
        )
        return interrupted

    def list(
        self,
        model: str | None = None,
        *,
        statuses: Iterable[JobStatus] | None = None,
        owner: str | None = None,
        submitter: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Job]:
        """Jobs oldest first, optionally of one model, in some states, of one owner (server),
        of one submitter; a page of them with ``limit`` and ``offset``."""
        query = sa.select(schema.jobs).order_by(schema.jobs.c.created_at, schema.jobs.c.id)
        query = _filter(query, model=model, statuses=statuses, owner=owner, submitter=submitter)
        query = query.limit(limit).offset(offset or None)
        rows = self._read(lambda conn: conn.execute(query).mappings().all())
        return [from_row(r) for r in rows]


# ---------------------------------------------------------------------- helpers
def _filter(
    query: Any,
    *,
    model: str | None = None,
    statuses: Any = None,
    owner: str | None = None,
    submitter: str | None = None,
) -> Any:
    t = schema.jobs
    if model is not None:
        query = query.where(t.c.model == model)
    if submitter is not None:
        query = query.where(t.c.submitter == submitter)
    if statuses is not None:
        query = query.where(t.c.status.in_([JobStatus(s).value for s in statuses]))
    if owner is not None:
        query = query.where(t.c.owner == owner)
    return query


def _lock_key(*parts: str) -> int:
    """A signed 64-bit key for a PostgreSQL advisory lock."""
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock_job(conn: sa.Connection, job_id: str) -> None:
    """Serialise event writers of one job until commit (PostgreSQL; SQLite serialises all writers).

    Event ids come from one sequence; without the lock two writers of a job could commit out
    of id order, and a stream that had passed the later id would never see the earlier event.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(schema.jobs.c.id).where(schema.jobs.c.id == job_id).with_for_update())


def _event(conn: sa.Connection, job_id: str, kind: str, data: dict[str, Any]) -> None:
    _lock_job(conn, job_id)
    conn.execute(schema.events.insert().values(job_id=job_id, kind=kind, data=data, at=utcnow()))
