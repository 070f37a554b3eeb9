"""The process that runs one training: ``python -m modelaas.jobs.child <job-id>``.

It loads the model as a serving process does (``warm()`` included unless ``--nowarm``),
captures everything the model prints or logs into the job's log, runs ``train`` and
writes the result. It never outlives the server: if its parent dies it kills its own
process group. SIGTERM (a cancel, or the server stopping) stops it; the scheduler then
records why.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any

from modelaas.errors import ModelLoadError
from modelaas.jobs.context import JobContext
from modelaas.jobs.ids import PARENT_PID_ENV
from modelaas.jobs.logs import OutputCapture
from modelaas.jobs.paths import JobPaths
from modelaas.jobs.records import JobStatus
from modelaas.jobs.service import restore_files
from modelaas.jobs.store import open_store
from modelaas.jobs.tracking import tracker_for
from modelaas.jobs.tree import become_subreaper, kill_descendants
from modelaas.model.jsonable import to_jsonable
from modelaas.model.loader import load, select_models
from modelaas.settings import Settings
from modelaas.telemetry import context as telemetry_context
from modelaas.telemetry import tracing

log = logging.getLogger("modelaas.training")


class Stopped(BaseException):
    """Raised in the training when SIGTERM arrives (not an error of the model)."""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m modelaas.jobs.child <job-id>", file=sys.stderr)
        return 2
    settings = Settings.load()
    return run(args[0], settings)


def run(job_id: str, settings: Settings) -> int:
    watch_parent()
    if settings.tracing:
        tracing.enable_from_environment("modelaas")
    telemetry_context.job_id.set(job_id)
    become_subreaper()  # orphans of the training's tree stay in it (see modelaas.jobs.tree)
    store = open_store(settings)
    job = store.get(job_id)
    if job is None or job.status is not JobStatus.RUNNING:
        return 0
    capture = OutputCapture(store, job_id, max_bytes=settings.train_log_size)
    capture.start()
    stop = threading.Event()
    cooperative = threading.Event()
    paths = JobPaths.of(settings)
    tracker = tracker_for(settings.mlflow_tracking_uri, settings.mlflow_experiment, job, paths.job(job_id))
    tracker.start()
    ended = "cancelled"  # what the tracked run ends as, unless the training finishes or fails
    context = JobContext(store, job_id, paths.output(job_id), tracker)

    def on_sigterm(signum: int, frame: Any) -> None:
        stop.set()
        context.cancel()
        if not cooperative.is_set():  # a model that watches context.cancelled stops by itself
            raise Stopped()

    signal.signal(signal.SIGTERM, on_sigterm)
    # Processes the model forks (multiprocessing pools) must not inherit that handler: a pool
    # stops its workers with SIGTERM, and a worker raising Stopped would hang the pool.
    os.register_at_fork(before=_hold_sigterm, after_in_parent=_release_sigterm, after_in_child=_default_sigterm)
    try:
        try:
            os.nice(settings.train_nice)
        except OSError:
            pass
        adapter = _load(job.model, settings)
        params = adapter.params_for("train")
        if getattr(adapter, "wants_context", False):
            cooperative.set()
        if settings.warm:
            adapter.warm()
        raw = {key: restore_files(value, job.inputs) for key, value in job.raw.items()}
        kwargs = params.validate(raw)
        log.info("Training %s of model %r started.", job_id, job.model)
        with tracing.training_span(job.model, job_id, _traceparent(settings, job_id)):
            result = adapter.train(kwargs, context)
        tracing.flush()
        context.flush()
        if stop.is_set() or context.cancelled:
            return 0  # the scheduler records the cancel
        output = to_jsonable(result)
        log.info("Training %s finished.", job_id)
        ended = "done"
        tracker.end(ended, context.output_dir)  # before the job's end: a finished job's run is complete
        capture.stop()  # every log line is stored before the final state, which ends event streams
        store.finish_eventually(job_id, JobStatus.DONE, result=output)
        return 0
    except Stopped:
        return 0
    except BaseException as exc:  # the model's failure is the job's error, whatever it is
        if stop.is_set():
            return 0
        trace = exc.traceback_text if isinstance(exc, ModelLoadError) and exc.traceback_text else None
        print(trace or traceback.format_exc(), file=sys.stderr, end="")
        tracing.flush()
        context.flush()
        ended = "error"
        tracker.end(ended, context.output_dir)
        capture.stop()
        store.finish_eventually(job_id, JobStatus.ERROR, message=_message(exc))
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if ended == "cancelled":
            tracker.end(ended)
        kill_descendants()  # what the training left running, daemons included
        capture.stop()
        store.close()


def _hold_sigterm() -> None:
    """Before a fork: SIGTERM waits, so that none reaches the new process before its handler is reset."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


def _release_sigterm() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _default_sigterm() -> None:
    """In a process forked by the training: SIGTERM ends it quietly, as in any fresh process.

    A SIGTERM sent meanwhile (a pool stopping a worker it has just started) was held, and
    now ends the process: without the hold, Python would drop it ("ignored due to race
    condition") and the worker would live on, hanging the pool.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _traceparent(settings: Settings, job_id: str) -> str | None:
    try:
        return (JobPaths.of(settings).job(job_id) / tracing.TRACEPARENT_FILE).read_text().strip()
    except OSError:
        return None


def _load(name: str, settings: Settings) -> Any:
    for ref in select_models(settings):
        if ref.name == name:
            return load(ref, settings)
    raise ModelLoadError(f"Model {name!r} is not served by this server any more.")


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc).strip()
    return text or type(exc).__name__


def watch_parent() -> None:
    """Kill this process group when the parent (the server) goes away, even by SIGKILL.

    The parent's pid comes from the environment when given: a parent that died while
    this process was starting (already re-parented) is noticed at once.
    """
    given = os.environ.pop(PARENT_PID_ENV, "")
    parent = int(given) if given.isdigit() else os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.25)
        try:
            kill_descendants()
            os.killpg(os.getpgid(0), signal.SIGKILL)
        finally:
            os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
