"""Job records as rows of the job store's table, and back."""

from __future__ import annotations

import datetime as dt
from typing import Any

from modelaas.jobs.records import InputFile, Job, JobStatus


def utc(value: dt.datetime | None) -> dt.datetime:
    assert value is not None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def optutc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else utc(value)


def to_row(job: Job) -> dict[str, Any]:
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


def from_row(row: Any) -> Job:
    return Job(
        id=row["id"],
        model=row["model"],
        status=JobStatus(row["status"]),
        args=dict(row["args"] or {}),
        raw=dict(row["raw"] or {}),
        inputs=tuple(InputFile(**f) for f in row["inputs"] or ()),
        created_at=utc(row["created_at"]),
        started_at=optutc(row["started_at"]),
        finished_at=optutc(row["finished_at"]),
        progress=row["progress"],
        metrics=dict(row["metrics"] or {}),
        result=row["result"],
        message=row["message"],
        owner=row["owner"],
        runner=dict(row["runner"] or {}),
        cancel_requested=bool(row["cancel_requested"]),
        heartbeat_at=optutc(row["heartbeat_at"]),
        log_lines=int(row["log_lines"]),
        log_dropped=int(row["log_dropped"]),
        submitter=row["submitter"],
    )
