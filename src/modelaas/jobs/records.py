"""Training jobs as durable records: states, the record, and its DEEPaaS rendering."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, field, replace
from typing import Any


class JobStatus(str, enum.Enum):
    """Where a job is in its life. ``queued -> running -> done | error | cancelled``;
    ``interrupted`` when the server that ran it went away."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_active(self) -> bool:
        return not self.is_terminal


TERMINAL = frozenset({JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED, JobStatus.INTERRUPTED})


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class InputFile:
    """An uploaded file kept with a job until it ends (a server-side reference)."""

    arg: str
    """The wire name of the argument it was sent for."""
    path: str
    content_type: str
    original_filename: str

    def info(self) -> dict[str, str]:
        """What a client is shown of it: never the server path."""
        return {"name": self.arg, "content_type": self.content_type, "original_filename": self.original_filename}


@dataclass(frozen=True)
class Job:
    """One training job. Timestamps are timezone-aware UTC."""

    id: str
    model: str
    status: JobStatus = JobStatus.QUEUED
    args: dict[str, Any] = field(default_factory=dict)
    """The arguments as the model receives them, JSON-rendered (files as their info)."""
    raw: dict[str, Any] = field(default_factory=dict)
    """The raw argument values the job's process validates again (files as ``{"$file": n}``)."""
    inputs: tuple[InputFile, ...] = ()
    created_at: dt.datetime = field(default_factory=utcnow)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    progress: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    message: str | None = None
    owner: str = ""
    """The server that accepted the job and runs it."""
    runner: dict[str, Any] = field(default_factory=dict)
    """Backend details of the running job (``{"backend": "process", "pid": ...}``)."""
    cancel_requested: bool = False
    heartbeat_at: dt.datetime | None = None
    log_lines: int = 0
    """How many lines its log holds."""
    log_dropped: int = 0
    """How many lines of its output were not kept (each gap is marked in the log)."""
    submitter: str | None = None
    """Who submitted it: an id derived from the access token (None without access control)."""

    def but(self, **changes: Any) -> Job:
        return replace(self, **changes)


def deepaas_time(value: dt.datetime | None) -> str | None:
    """``str(datetime)`` as DEEPaaS renders it (UTC, no offset)."""
    if value is None:
        return None
    return str(value.astimezone(dt.timezone.utc).replace(tzinfo=None))


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def to_record(job: Job) -> dict[str, Any]:
    """The JSON record clients see: DEEPaaS's keys first, then ours.

    ``date`` is when the job was submitted; ``result.duration`` is the time it ran
    (from start to finish, without the time spent queued).
    """
    record: dict[str, Any] = {
        "uuid": job.id,
        "date": deepaas_time(job.created_at),
        "args": job.args,
        "status": job.status.value,
    }
    if job.message is not None:
        record["message"] = job.message
    if job.status is JobStatus.DONE or job.finished_at is not None:
        duration = None
        if job.finished_at is not None and job.started_at is not None:
            duration = str(job.finished_at - job.started_at)
        record["result"] = {
            "output": job.result,
            "finish_date": deepaas_time(job.finished_at),
            "duration": duration,
        }
    record.update(
        {
            "model": job.model,
            "progress": job.progress,
            "metrics": job.metrics,
            "created_at": iso(job.created_at),
            "started_at": iso(job.started_at),
            "finished_at": iso(job.finished_at),
            "cancel_requested": job.cancel_requested,
            "log_lines": job.log_lines,
            "log_lines_dropped": job.log_dropped,
        }
    )
    return record
