"""Where training processes run: a backend starts, watches and stops them."""

from __future__ import annotations

from typing import Any, Protocol

from modelaas.jobs.records import Job
from modelaas.settings import Settings


class Backend(Protocol):
    """Runs each training job's process (``python -m modelaas.jobs.child <id>``) somewhere."""

    name: str

    def start(self, job: Job) -> dict[str, Any]:
        """Start the job; return what identifies its run (stored as the job's ``runner``)."""

    def poll(self, job_id: str) -> str | None:
        """``None`` while the job runs; else how it ended (``"exit code 0"``, ``"signal SIGKILL"``)."""

    def terminate(self, job_id: str) -> None:
        """Ask the job to stop (SIGTERM to its process tree)."""

    def kill(self, job_id: str) -> None:
        """Stop it now (SIGKILL to its process tree)."""

    def forget(self, job_id: str) -> None:
        """Release what is kept about an ended job."""

    def close(self) -> None:
        """Stop everything still running (the server is stopping)."""


def make_backend(settings: Settings) -> Backend:
    if settings.jobs_backend == "ray":
        from modelaas.jobs.backends.ray import RayBackend

        return RayBackend(settings)
    from modelaas.jobs.backends.process import ProcessBackend

    return ProcessBackend(settings)
