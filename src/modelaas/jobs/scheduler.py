"""The scheduler: runs this server's queued jobs, stops cancelled ones, records endings.

One per server (a thread in the supervisor, or in the app when it runs on its own). It
claims the server's own queued jobs in order while fewer than ``--train-workers`` run,
starts each through the backend, sends SIGTERM to a job whose cancel was requested (on
any server sharing the store) and SIGKILL after ``--train-cancel-grace``, and records how
each job ended when its process did not say so itself. At start it marks ``interrupted``
the jobs of servers that are gone; at stop it stops its jobs and marks them interrupted.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from modelaas.jobs import tracking
from modelaas.jobs.backends import Backend
from modelaas.jobs.database import first_line, is_passing
from modelaas.jobs.paths import JobPaths
from modelaas.jobs.records import Job, JobStatus
from modelaas.jobs.store import JobStore
from modelaas.processes import pid_alive
from modelaas.settings import Settings
from modelaas.telemetry import metrics

log = logging.getLogger("modelaas.jobs")

TICK = 0.05
"""How often running trainings are checked for an end (no database work)."""
CLAIM_EVERY = 0.5
"""How often queued jobs are looked for when nobody said one was submitted (see :meth:`wake`)."""
CANCEL_CHECK_EVERY = 0.25
HEARTBEAT_EVERY = 2.0
ORPHAN_CHECK_EVERY = 10.0
STALE_AFTER = 30.0


@dataclass
class Running:
    job_id: str
    stop_deadline: float | None = None
    reason: str | None = None
    """Why we stopped it (``cancelled`` or ``interrupted``), if we did."""
    killed: bool = False


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        server_id: str,
        backend: Backend,
        *,
        ended: Callable[[Job], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.server_id = server_id
        self.backend = backend
        self.ended = ended
        """Called (in the scheduler's thread) with each job this scheduler ran, once its end is recorded."""
        self._running: dict[str, Running] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_heartbeat = 0.0
        self._next_orphan_check = 0.0
        self._next_claim = 0.0
        self._next_cancel_check = 0.0
        self.on_end: Callable[[Job], None] | None = None
        """Called (on the scheduler's thread) with each job of this server once its end is recorded."""

    # ------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.store.register_server(self.server_id)
        for job in self.store.interrupt_orphans(stale_after=STALE_AFTER, pid_alive=pid_alive, exclude=self.server_id):
            log.warning("Training %s of %r was interrupted: its server stopped.", job.id, job.model)
            self._drop_inputs(job.id)
        self._thread = threading.Thread(target=self._loop, name="modelaas-scheduler", daemon=True)
        self._thread.start()

    def running_jobs(self) -> list[str]:
        """The ids of the jobs this scheduler runs (or whose end it has yet to record)."""
        return list(self._running)

    def tracks(self, job_id: str) -> bool:
        """Whether this scheduler still watches the job (its process, or its ending not yet recorded)."""
        return job_id in self._running

    def wake(self) -> None:
        """Look for work now rather than at the next tick."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the loop, then stop this server's jobs and record them as interrupted."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for running in self._running.values():
            running.reason = running.reason or "interrupted"
            self.backend.terminate(running.job_id)
        deadline = time.monotonic() + self.settings.train_cancel_grace
        while self._running and time.monotonic() < deadline:
            self._reap()
            time.sleep(TICK)
        for running in list(self._running.values()):
            self.backend.kill(running.job_id)
        time.sleep(TICK)
        self._reap(force=True)
        for job in self.store.list(statuses=[JobStatus.QUEUED], owner=self.server_id):
            self.store.finish(job.id, JobStatus.INTERRUPTED, message="The server stopped before the job started.")
        self.backend.close()
        self.store.remove_server(self.server_id)

    # ------------------------------------------------------------------ loop
    def _loop(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self.step()
                if failing:
                    failing = False
                    log.warning("The scheduler works again.")
            except Exception as exc:  # a store hiccup must not end scheduling
                if not failing:  # once, not every second while it lasts
                    failing = True
                    passing = is_passing(exc)
                    log.error(
                        "Scheduler step failed (%s); retrying every second.",
                        first_line(exc) if passing else exc,
                        exc_info=not passing,
                    )
                time.sleep(1)
            if self._wake.wait(TICK):
                self._wake.clear()
                self._next_claim = 0.0

    def step(self) -> None:
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + HEARTBEAT_EVERY
            self.store.heartbeat_server(self.server_id)
            self.store.heartbeat_jobs(list(self._running))
        if now >= self._next_orphan_check:
            self._next_orphan_check = now + ORPHAN_CHECK_EVERY
            self.store.interrupt_orphans(stale_after=STALE_AFTER, pid_alive=pid_alive, exclude=self.server_id)
            self._end_untracked()
        if now >= self._next_cancel_check:
            self._next_cancel_check = now + CANCEL_CHECK_EVERY
            self._handle_cancels(now)
        self._kill_overdue(now)
        self._reap()
        if now >= self._next_claim:
            self._next_claim = now + CLAIM_EVERY
            self._claim()

    def _handle_cancels(self, now: float) -> None:
        if not self._running:
            return
        for job in self.store.list(statuses=[JobStatus.RUNNING], owner=self.server_id):
            running = self._running.get(job.id)
            if running is None or not job.cancel_requested or running.stop_deadline is not None:
                continue
            log.info("Cancelling training %s.", job.id)
            running.reason = "cancelled"
            running.stop_deadline = now + self.settings.train_cancel_grace
            self.backend.terminate(job.id)

    def _end_untracked(self) -> None:
        """Jobs the store says this server runs but no process of ours does: their claim's
        commit was lost on the way (a dropped connection), so nothing runs them."""
        for job in self.store.list(statuses=[JobStatus.RUNNING], owner=self.server_id):
            if job.id not in self._running:
                log.error("Training %s is recorded as running here, but no process runs it.", job.id)
                message = "The training could not be started (the job store connection failed)."
                self.store.finish(job.id, JobStatus.ERROR, message=message)

    def _kill_overdue(self, now: float) -> None:
        for running in self._running.values():
            if running.stop_deadline is not None and now > running.stop_deadline and not running.killed:
                running.killed = True
                self.backend.kill(running.job_id)

    def _reap(self, *, force: bool = False) -> None:
        for job_id, running in list(self._running.items()):
            how = self.backend.poll(job_id)
            if how is None and not force:
                continue
            job = self.store.get(job_id)  # the store may be unreachable: then the job stays ours
            if job is not None and job.status.is_active:
                self._record_end(job, running, how or "stopped")
                job = self.store.get(job_id)
            if job is not None:
                _log_end(job)
                self._call_ended(job)
                if self.on_end is not None:
                    try:
                        self.on_end(job)
                    except Exception:  # a hook's failure is logged, never the scheduler's
                        log.exception("After training %s of %r:", job.id, job.model)
            self.backend.forget(job_id)
            self._drop_inputs(job_id)
            del self._running[job_id]  # last: a job no longer running has its end recorded and inputs gone
            self._next_claim = 0.0  # a slot is free

    def _call_ended(self, job: Job) -> None:
        if self.ended is None or job.status.is_active:
            return
        try:
            self.ended(job)
        except Exception:
            log.exception("After the end of training %s of %r:", job.id, job.model)

    def _record_end(self, job: Job, running: Running, how: str) -> None:
        if running.reason == "cancelled" or job.cancel_requested:
            self.store.finish(job.id, JobStatus.CANCELLED, message="Cancelled on request.")
        elif running.reason == "interrupted":
            self.store.finish(job.id, JobStatus.INTERRUPTED, message="The server stopped before the job finished.")
        else:
            log.error("Training %s of %r ended without a result (%s).", job.id, job.model, how)
            self.store.finish(job.id, JobStatus.ERROR, message=f"The training process ended unexpectedly ({how}).")
        if self.settings.mlflow_tracking_uri:  # a process killed before it ended its MLflow run
            status = "cancelled" if running.reason == "cancelled" or job.cancel_requested else running.reason or "error"
            tracking.end_abandoned(JobPaths.of(self.settings).job(job.id), status)

    def _claim(self) -> None:
        while len(self._running) < self.settings.train_workers and not self._stop.is_set():
            job = self.store.claim_next(self.server_id, {"backend": self.backend.name})
            if job is None:
                return
            try:
                runner = self.backend.start(job)
            except Exception as exc:
                log.exception("Could not start training %s.", job.id)
                self.store.finish(job.id, JobStatus.ERROR, message=f"The training could not be started: {exc}")
                continue
            self._running[job.id] = Running(job.id)  # first: it runs, whatever the store says next
            self.store.set_runner(job.id, runner)
            waited = (job.started_at - job.created_at).total_seconds() if job.started_at and job.created_at else None
            log.info(
                "Training %s of %r started%s.",
                job.id,
                job.model,
                f" after {waited:.1f} s queued" if waited is not None else "",
                extra={"job_id": job.id, "model": job.model, "job_status": "running"},
            )

    def _drop_inputs(self, job_id: str) -> None:
        """Uploaded files are kept with a job until it ends."""
        shutil.rmtree(JobPaths.of(self.settings).inputs(job_id), ignore_errors=True)


def _log_end(job: Job) -> None:
    """The job's end at INFO (WARNING for a failure), with how long it ran; and its metrics."""
    ran = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
    took = f" after {ran:.1f} s" if ran is not None else ""
    status = job.status.value
    level = logging.WARNING if job.status is JobStatus.ERROR else logging.INFO
    why = f": {job.message}" if job.message and job.status is not JobStatus.DONE else ""
    log.log(
        level,
        "Training %s of %r %s%s%s.",
        job.id,
        job.model,
        {"done": "finished", "error": "failed"}.get(status, status),
        took,
        why,
        extra={"job_id": job.id, "model": job.model, "job_status": status, "duration_ms": ran and ran * 1000},
    )
    metrics.current().training_ended(job.model, status, ran)
