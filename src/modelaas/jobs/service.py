"""Training jobs as the transports see them: submit, list, show, cancel, delete, logs, files.

The service only writes records; a :class:`~modelaas.jobs.scheduler.Scheduler` (in the
supervisor, or embedded in the app) picks queued jobs up and runs them. Every method
blocks on the store: call them from a worker thread in async code.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelaas.errors import BadRequest, JobNotFound, NotFound, TooManyJobs
from modelaas.jobs.paths import JobPaths
from modelaas.jobs.records import InputFile, Job, JobStatus, new_job_id
from modelaas.model.adapters import ModelAdapter
from modelaas.model.files import File
from modelaas.model.jsonable import to_jsonable
from modelaas.settings import Settings
from modelaas.telemetry import metrics, tracing

if TYPE_CHECKING:
    from modelaas.jobs.store import Event, JobStore

log = logging.getLogger("modelaas.jobs")

CANCEL_WAIT_EXTRA = 5.0
"""Seconds a cancel waits for the job to end beyond the SIGTERM grace period."""


class JobService:
    def __init__(self, settings: Settings, store: JobStore | None, server_id: str) -> None:
        """``store`` None: the settings' job store, opened (and migrated) on first use.

        Serving processes start that way: the store and SQLAlchemy stay out of their start-up.
        """
        self.settings = settings
        self.paths = JobPaths.of(settings)
        self._store = store
        self._opening = threading.Lock()
        self.server_id = server_id

    @property
    def store(self) -> JobStore:
        store = self._store
        if store is None:
            with self._opening:
                if self._store is None:
                    from modelaas.jobs.store import open_store

                    opened = open_store(self.settings)
                    opened.migrate()
                    self._store = opened
                store = self._store
        return store

    @property
    def store_open(self) -> bool:
        return self._store is not None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    # ---------------------------------------------------------------- submit
    def submit(self, adapter: ModelAdapter, raw: Mapping[str, Any], *, submitter: str | None = None) -> Job:
        """Validate the arguments, keep uploaded files with the job, queue it (as ``submitter``'s)."""
        kwargs = adapter.params_for("train").validate(raw)
        waiting = self.store.count(statuses=[JobStatus.QUEUED], owner=self.server_id)
        if waiting >= self.settings.train_queue:  # early: before files are moved (checked again on insert)
            raise self._too_many(waiting)
        job_id = new_job_id()
        inputs: list[InputFile] = []
        stored_raw = {key: _keep_files(value, job_id, self.paths.inputs(job_id), inputs) for key, value in raw.items()}
        job = Job(
            id=job_id,
            model=adapter.name,
            args={name: _render_arg(value) for name, value in kwargs.items()},
            raw=stored_raw,
            inputs=tuple(inputs),
            owner=self.server_id,
            submitter=submitter,
        )
        traceparent = tracing.current_traceparent()
        if traceparent is not None:  # the training's trace links to this request's (read by jobs/child.py)
            self.job_dir(job_id).mkdir(parents=True, exist_ok=True)
            (self.job_dir(job_id) / tracing.TRACEPARENT_FILE).write_text(traceparent)
        from modelaas.jobs.store import QueueFull

        try:
            created = self.store.create(job, queue_limit=self.settings.train_queue)
        except QueueFull as full:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            raise self._too_many(full.waiting) from None
        except Exception:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            raise
        log.info("Training %s of %r submitted.", job_id, adapter.name, extra={"job_id": job_id, "model": adapter.name})
        metrics.current().training_submitted(adapter.name)
        return created

    def _too_many(self, waiting: int) -> TooManyJobs:
        return TooManyJobs(
            f"{waiting} training{' is' if waiting == 1 else 's are'} already waiting on this server (--train-queue "
            f"{self.settings.train_queue}); retry later."
        )

    # ----------------------------------------------------------------- read
    def get(self, model: str, job_id: str, *, viewer: str | None = None) -> Job:
        """The job; :class:`JobNotFound` also when ``viewer`` (a submitter) is given and it is
        someone else's (whether it exists is not told)."""
        job = self.store.get(job_id)
        if job is None or job.model != model or (viewer is not None and job.submitter != viewer):
            raise JobNotFound(model, job_id)
        return job

    def logs(self, model: str, job_id: str, offset: int = 0, limit: int = 10000) -> tuple[list[str], int]:
        """Log lines from line ``offset`` on, and the offset to ask for next."""
        self.get(model, job_id)
        if offset < 0:
            raise BadRequest("offset must be zero or more")
        chunk = self.store.log_lines(job_id, offset, limit)
        return chunk, offset + len(chunk)

    def events(self, model: str, job_id: str, after: int = 0) -> list[Event]:
        self.get(model, job_id)
        return self.store.events(job_id, after=after)

    # --------------------------------------------------------------- cancel
    def cancel(self, model: str, job_id: str) -> Job:
        """Cancel an active job and wait (a few seconds) until it has stopped."""
        job = self.get(model, job_id)
        if job.status.is_terminal:
            return job
        job = self.store.request_cancel(job_id) or job
        deadline = time.monotonic() + self.settings.train_cancel_grace + CANCEL_WAIT_EXTRA
        while job.status.is_active and time.monotonic() < deadline:
            time.sleep(0.05)
            job = self.store.get(job_id) or job
        return job

    def delete(self, model: str, job_id: str) -> Job:
        """DEEPaaS's DELETE: cancel an active job (its record stays); remove a finished one."""
        job = self.get(model, job_id)
        if job.status.is_active:
            return self.cancel(model, job_id)
        self.store.delete(job_id)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        return job

    # ---------------------------------------------------------------- files
    def job_dir(self, job_id: str) -> Path:
        return self.paths.job(job_id)

    def output_dir(self, job_id: str) -> Path:
        return self.paths.output(job_id)

    def list_files(self, model: str, job_id: str) -> list[dict[str, Any]]:
        self.get(model, job_id)
        root = self.output_dir(job_id)
        if not root.is_dir():
            return []
        out = []
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                out.append({"path": path.relative_to(root).as_posix(), "size": path.stat().st_size})
        return out

    def file_path(self, model: str, job_id: str, relative: str) -> Path:
        """The artefact at ``relative`` inside the job's output folder; nothing outside it."""
        self.get(model, job_id)
        if "\x00" in relative:
            raise NotFound(f"Job {job_id!r} has no file {relative!r}.")
        root = self.output_dir(job_id).resolve()
        candidate = (root / relative).resolve()
        if not candidate.is_relative_to(root) or candidate == root:
            raise NotFound(f"Job {job_id!r} has no file {relative!r}.")
        if not candidate.is_file():
            raise NotFound(f"Job {job_id!r} has no file {relative!r}.")
        return candidate

    def list(
        self, model: str, *, limit: int | None = None, offset: int = 0, viewer: str | None = None
    ) -> tuple[list[Job], int]:
        """The model's jobs (``viewer``'s only, when given), oldest first (a page of them with
        ``limit``/``offset``), and how many there are."""
        jobs = self.store.list(model, limit=limit, offset=offset, submitter=viewer)
        total = len(jobs) if limit is None and not offset else self.store.count(model, submitter=viewer)
        return jobs, total


_MARKS = ({"$file"}, {"$literal"})


def _keep_files(value: Any, job_id: str, folder: Path, inputs: list[InputFile]) -> Any:
    """Move uploaded files into the job's folder; stand for them in ``raw`` by index.

    A file stands as ``{"$file": n}``; a client's own value of that shape (or of the shape
    ``{"$literal": ...}``) is stored as ``{"$literal": value}``, so that it stays a value.
    """
    if isinstance(value, list):
        return [_keep_files(v, job_id, folder, inputs) for v in value]
    if isinstance(value, File):
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{len(inputs)}-{Path(value.filename).name}"
        shutil.move(value.filename, target)
        inputs.append(InputFile(value.name, str(target), value.content_type, value.original_filename))
        return {"$file": len(inputs) - 1}
    if isinstance(value, dict) and set(value) in _MARKS:
        return {"$literal": value}
    return value


def restore_files(value: Any, inputs: tuple[InputFile, ...]) -> Any:
    """The inverse of :func:`_keep_files`, in the job's process: ``{"$file": n}`` -> File."""
    if isinstance(value, list):
        return [restore_files(v, inputs) for v in value]
    if isinstance(value, dict) and set(value) == {"$literal"}:
        return value["$literal"]
    if isinstance(value, dict) and set(value) == {"$file"}:
        f = inputs[int(value["$file"])]
        return File(f.arg, f.path, f.content_type, f.original_filename)
    return value


def _render_arg(value: Any) -> Any:
    if isinstance(value, list):
        return [_render_arg(v) for v in value]
    if isinstance(value, File):
        return {"name": value.name, "content_type": value.content_type, "original_filename": value.original_filename}
    try:
        rendered = to_jsonable(value)
        json.dumps(rendered)
        return rendered
    except Exception:
        return str(value)
