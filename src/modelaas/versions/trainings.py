"""``--register-trainings``: each successful training becomes a new version of its model.

The scheduler that ran a training calls the hook once it has recorded the training's end
(:class:`~modelaas.jobs.scheduler.Scheduler`, ``ended``); a training that finished
(``done``) is registered from its output folder as :func:`register_job` does for
``POST <b>/v2/models/<m>/versions/``. The version is not activated. A registration that
fails is logged; the training stays done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from modelaas.jobs.database import store_url
from modelaas.jobs.paths import JobPaths
from modelaas.jobs.records import Job, JobStatus
from modelaas.settings import Settings
from modelaas.versions import mlflow as versions_mlflow
from modelaas.versions.registry import VersionRegistry
from modelaas.versions.sources import register_job

log = logging.getLogger("modelaas.versions")

REGISTERED_BY = "--register-trainings"
"""The ``created_by`` of versions registered automatically."""


def training_hook(settings: Settings) -> Callable[[Job], None] | None:
    """What the scheduler calls after each training's end, or None when nothing is to be done."""
    if not settings.register_trainings:
        return None
    return _Registrar(settings)


class _Registrar:
    """Opens the registry for each registration (trainings end seldom; nothing stays open)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, job: Job) -> None:
        if job.status is not JobStatus.DONE:
            return
        s = self.settings
        registry = VersionRegistry(store_url(s.jobs_db, s.data_dir), s.data_dir)
        registry.registered = versions_mlflow.registered_hook(s)
        try:
            version = register_job(
                registry,
                job,
                JobPaths.of(s).output(job.id),
                model=job.model,
                description=f"Training {job.id}",
                by=REGISTERED_BY,
            )
        except Exception:
            log.exception("Training %s of %r could not be registered as a version.", job.id, job.model)
            return
        finally:
            registry.close()
        log.info(
            "Training %s registered as version %d of %r (%d files).",
            job.id,
            version.version,
            job.model,
            len(version.files),
            extra={"job_id": job.id, "model": job.model},
        )
