"""The context a training receives in its process: progress, cancellation, output folder."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from modelaas.jobs.database import first_line
from modelaas.jobs.store import JobStore
from modelaas.jobs.tracking import Tracker
from modelaas.model.interface import TrainingContext

REPORT_INTERVAL = 0.2
CANCEL_POLL_INTERVAL = 0.5


class JobContext(TrainingContext):
    """A :class:`TrainingContext` that records reports in the job store.

    Reports are written at most every 0.2 s (the latest values always win, and the last
    one is written by :meth:`flush`), so a model may report every batch. The store being
    unreachable never reaches the model: a report that cannot be written waits for the
    next one (the latest values win), and ``cancelled`` answers what it knew last.
    """

    def __init__(self, store: JobStore, job_id: str, output_dir: Path, tracker: Tracker | None = None) -> None:
        super().__init__(output_dir, logging.getLogger("modelaas.training"))
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._store = store
        self._job_id = job_id
        self._lock = threading.Lock()
        self._pending: dict[str, Any] | None = None
        self._last_write = 0.0
        self._last_cancel_poll = 0.0
        self._failing = False
        self._tracker = tracker or Tracker()

    def report(self, progress: float | None = None, **metrics: Any) -> None:
        super().report(progress, **metrics)
        if progress is not None or metrics:  # each report is a step of the tracked run
            self._tracker.report({**({"progress": self.progress} if progress is not None else {}), **metrics})

    def _on_report(self) -> None:
        with self._lock:
            self._pending = {"progress": self.progress, "metrics": dict(self.metrics)}
            if time.monotonic() - self._last_write >= REPORT_INTERVAL:
                self._write()

    def flush(self) -> None:
        with self._lock:
            if self._pending is not None:
                self._write()

    def _write(self) -> None:
        pending, self._pending = self._pending, None
        self._last_write = time.monotonic()
        if pending is not None:
            try:
                self._store.report(self._job_id, progress=pending["progress"], metrics=pending["metrics"])
                self._failing = False
            except Exception as exc:  # the store is unreachable: the next report carries the latest values
                if self._pending is None:
                    self._pending = pending
                if not self._failing:
                    self._failing = True
                    self.logger.warning("Progress cannot be recorded now (%s); the latest will be.", first_line(exc))

    @property
    def cancelled(self) -> bool:
        if self._cancel.is_set():
            return True
        now = time.monotonic()
        if now - self._last_cancel_poll >= CANCEL_POLL_INTERVAL:
            self._last_cancel_poll = now
            try:
                job = self._store.get(self._job_id)
            except Exception:  # the store is unreachable: a cancel still arrives as SIGTERM
                return False
            if job is None or job.cancel_requested or job.status.is_terminal:
                self._cancel.set()
        return self._cancel.is_set()
