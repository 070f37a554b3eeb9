"""Where each training job's files live: ``<data dir>/jobs/<job id>/``, with ``inputs/`` (the
uploads it was submitted with, kept until it ends), ``output/`` (its artefacts) and, with tracing
on, ``traceparent`` (the submitting request's, which the training's trace links to)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelaas.settings import Settings


@dataclass(frozen=True)
class JobPaths:
    root: Path

    @classmethod
    def of(cls, settings: Settings) -> JobPaths:
        return cls(settings.jobs_dir)

    def job(self, job_id: str) -> Path:
        return self.root / job_id

    def inputs(self, job_id: str) -> Path:
        return self.job(job_id) / "inputs"

    def output(self, job_id: str) -> Path:
        return self.job(job_id) / "output"
