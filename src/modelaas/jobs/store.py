"""The job store: SQLite in the data directory by default, PostgreSQL when configured.

Every process that touches jobs (serving processes, the scheduler, training processes)
opens its own :class:`JobStore` on the same URL. Writes that change a job's state are
compare-and-set, so concurrent servers never run a job twice or overwrite a final state.
Each state change, progress report and log line is also appended to the job's event
list, which the events stream and the logs endpoint read.

Reads never block writers: on SQLite a read runs in a deferred transaction (WAL lets it
proceed beside a writer), a write in ``BEGIN IMMEDIATE``. A transaction that fails for a
passing reason (a locked SQLite file, a PostgreSQL connection that was dropped or refused)
is run again, with back-off, for up to ``retry_for`` seconds; other failures, and a write
whose commit may have happened already, raise at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from modelaas.errors import ConfigError
from modelaas.jobs import schema
from modelaas.jobs.records import TERMINAL, InputFile, Job, JobStatus, utcnow

ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
RETRY_FOR = 10.0
"""Seconds a store call keeps retrying a transaction that failed for a passing reason."""
CONNECT_TIMEOUT = 10
"""Seconds to wait for a PostgreSQL connection before the attempt counts as failed."""
RETRY_FIRST_DELAY = 0.05
RETRY_MAX_DELAY = 1.0
RETRY_LONG_DELAY = 10.0
"""Longest pause between attempts of callers that wait for the store to come back."""
READ_OPTION = "modelaas_read"
"""Execution option of connections that only read (SQLite: a deferred transaction)."""

T = TypeVar("T")
log = logging.getLogger("modelaas.jobs")


class JobGone(LookupError):
    """The job was deleted (while something was still writing to it)."""


class QueueFull(Exception):
    """A new job would pass its server's limit of queued jobs."""

    def __init__(self, waiting: int) -> None:
        super().__init__(f"{waiting} jobs are queued already")
        self.waiting = waiting


@dataclass(frozen=True)
class Event:
    id: int
    job_id: str
    kind: str
    """``state``, ``progress`` or ``log``."""
    data: dict[str, Any]
    at: dt.datetime


@contextlib.contextmanager
def _sqlite_migration_lock(engine: sa.Engine) -> Iterator[None]:
    """For a SQLite file, a lock file beside it held during migration (PostgreSQL uses an advisory lock).

    pysqlite starts no transaction before DDL, so two processes migrating a new file would
    both try to create the tables.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def store_url(jobs_db: str | None, data_dir: Path) -> str:
    """The SQLAlchemy URL for ``--jobs-db`` (default: SQLite in the data directory)."""
    if not jobs_db:
        return f"sqlite:///{data_dir / 'jobs.sqlite3'}"
    if jobs_db.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + jobs_db.split("://", 1)[1]
    if jobs_db.startswith(("sqlite:", "postgresql+")):
        return jobs_db
    raise ConfigError(f"--jobs-db must be a postgresql:// or sqlite:/// URL, not {jobs_db!r}")


class JobStore:
    def __init__(self, url: str, *, retry_for: float = RETRY_FOR) -> None:
        self.url = url
        self.retry_for = retry_for
        try:
            self.engine = _engine(url)
        except (ImportError, sa.exc.ArgumentError) as exc:
            hint = " (install modelaas[postgres])" if "postgresql" in url else ""
            raise ConfigError(f"Cannot use job store {_safe(url)}: {exc}{hint}") from None

    def migrate(self) -> int:
        """Bring the schema up to date; several processes may call it at once (they take turns)."""
        try:
            with _sqlite_migration_lock(self.engine):
                return schema.migrate(self.engine)
        except sa.exc.OperationalError as exc:
            raise ConfigError(f"Cannot open job store {_safe(self.url)}: {exc.orig}") from None

    def close(self) -> None:
        self.engine.dispose()

    # ----------------------------------------------------------- transactions
    def _read(self, work: Callable[[sa.Connection], T]) -> T:
        """Run ``work`` in a read-only transaction (retried like a write; reads repeat safely)."""
        return self._run(work, read=True, repeatable=True)

    def _write(self, work: Callable[[sa.Connection], T], *, repeatable: bool = False) -> T:
        """Run ``work`` in a write transaction.

        ``repeatable``: running it again after a commit that failed midway cannot do harm
        (it is a compare-and-set or it overwrites with the same values), so even a
        connection lost while committing is retried.
        """
        return self._run(work, read=False, repeatable=repeatable)

    def _run(self, work: Callable[[sa.Connection], T], *, read: bool, repeatable: bool) -> T:
        deadline: float | None = None
        delay = RETRY_FIRST_DELAY
        while True:
            committing = False
            try:
                with self.engine.connect() as conn:
                    if read:
                        conn.execution_options(**{READ_OPTION: True})
                    with conn.begin():
                        result = work(conn)
                        committing = True
                return result
            except sa.exc.DBAPIError as exc:
                if not _passing(exc) or (committing and not repeatable):
                    raise
                now = time.monotonic()
                deadline = deadline or now + self.retry_for
                if now >= deadline:
                    raise
                time.sleep(min(delay, deadline - now))
                delay = min(delay * 2, RETRY_MAX_DELAY)

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
            conn.execute(t.insert().values(**_row(job)))
            _event(conn, job.id, "state", {"status": job.status.value})

        self._write(work, repeatable=True)
        return job

    def get(self, job_id: str) -> Job | None:
        row = self._read(
            lambda conn: conn.execute(sa.select(schema.jobs).where(schema.jobs.c.id == job_id)).mappings().first()
        )
        return _job(row) if row else None

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
                if not _passing(exc):
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
        return [Event(int(r["id"]), r["job_id"], r["kind"], dict(r["data"]), _utc(r["at"])) for r in rows]

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
            if _utc(r["heartbeat_at"]) >= limit and not (r["host"] == host and not pid_alive(int(r["pid"])))
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
        return [_job(r) for r in rows]


# ---------------------------------------------------------------------- helpers
def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            # A writer takes the lock at once (waiting up to the busy timeout), so that it never
            # fails half-way when upgrading; a reader takes none: WAL lets it read beside a writer.
            read = conn.get_execution_options().get(READ_OPTION, False)
            conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args={"connect_timeout": CONNECT_TIMEOUT}
    )


def is_passing(exc: BaseException) -> bool:
    """Whether a store call that raised ``exc`` may succeed later (the store is unreachable or busy)."""
    return isinstance(exc, sa.exc.DBAPIError) and _passing(exc)


def first_line(exc: BaseException) -> str:
    """The first line of what a store failure says (the driver's message, without the SQL)."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def _passing(exc: sa.exc.DBAPIError) -> bool:
    """Whether running the transaction again may succeed: a lock, a lost or refused connection, a full disk."""
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    if isinstance(exc.orig, sqlite3.OperationalError):
        text = str(exc.orig).lower()
        return "locked" in text or "busy" in text or "disk is full" in text  # room may be made
    return True  # PostgreSQL: connection failures, administrator shutdowns, deadlocks, serialisation


def _safe(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<job store>"


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


def _utc(value: dt.datetime | None) -> dt.datetime:
    assert value is not None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _opt_utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _utc(value)


def _row(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "model": job.model,
        "status": job.status.value,
        "args": job.args,
        "raw": job.raw,
        "inputs": [vars(f) for f in job.inputs],
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "progress": job.progress,
        "metrics": job.metrics,
        "result": job.result,
        "message": job.message,
        "owner": job.owner,
        "runner": job.runner,
        "cancel_requested": job.cancel_requested,
        "heartbeat_at": job.heartbeat_at,
        "log_lines": job.log_lines,
        "log_dropped": job.log_dropped,
        "submitter": job.submitter,
    }


def _job(row: Any) -> Job:
    return Job(
        id=row["id"],
        model=row["model"],
        status=JobStatus(row["status"]),
        args=dict(row["args"] or {}),
        raw=dict(row["raw"] or {}),
        inputs=tuple(InputFile(**f) for f in row["inputs"] or ()),
        created_at=_utc(row["created_at"]),
        started_at=_opt_utc(row["started_at"]),
        finished_at=_opt_utc(row["finished_at"]),
        progress=row["progress"],
        metrics=dict(row["metrics"] or {}),
        result=row["result"],
        message=row["message"],
        owner=row["owner"],
        runner=dict(row["runner"] or {}),
        cancel_requested=bool(row["cancel_requested"]),
        heartbeat_at=_opt_utc(row["heartbeat_at"]),
        log_lines=int(row["log_lines"]),
        log_dropped=int(row["log_dropped"]),
        submitter=row["submitter"],
    )
