"""How the jobs subsystem is put together: the one place a job store, a scheduler and a
backend are built from settings.

* :func:`~modelaas.jobs.store.open_store`: the settings' job store (SQLite in the data dir,
  or ``--jobs-db``); every process that touches jobs opens its own.
* :class:`SchedulerHost`: the store, the scheduler and its backend of one server, started
  and stopped together. The supervisor of ``modelaas serve`` runs one.
* What an app needs of trainings (:class:`Trainings`): :class:`LocalTrainings` runs a
  :class:`SchedulerHost` in the app's own process (an app on its own, tests);
  :class:`SupervisedTrainings` is a serving process's part: it queues jobs and tells the
  supervisor, whose host runs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelaas.jobs.ids import new_server_id
from modelaas.jobs.service import JobService
from modelaas.settings import Settings

if TYPE_CHECKING:
    from modelaas.jobs.records import Job
    from modelaas.jobs.scheduler import Scheduler


class SchedulerHost:
    """One server's scheduler, over its own job store and the settings' backend.

    ``ended``: called with each job the scheduler ran once its end is recorded (e.g.
    :func:`modelaas.versions.trainings.training_hook`, given by the layers above).
    """

    def __init__(self, settings: Settings, server_id: str, *, ended: Callable[[Job], None] | None = None) -> None:
        from modelaas.jobs.backends import make_backend
        from modelaas.jobs.scheduler import Scheduler
        from modelaas.jobs.store import open_store

        self.store = open_store(settings)
        self.scheduler: Scheduler = Scheduler(settings, self.store, server_id, make_backend(settings), ended=ended)

    def start(self) -> None:
        """Migrate the store (a bad URL raises here) and start the scheduler."""
        self.store.migrate()
        self.scheduler.start()

    def wake(self) -> None:
        self.scheduler.wake()

    def stop(self) -> None:
        """Stop the scheduler; this server's running trainings end ``interrupted``."""
        self.scheduler.stop()


class Trainings:
    """What an app needs of the jobs subsystem: the service its train routes call, and hooks."""

    service: JobService

    async def start(self) -> None:
        """At app start-up."""

    async def stop(self) -> None:
        """At app shutdown (the service's store is closed by the app)."""

    def submitted(self) -> None:
        """A job was queued: whoever runs the scheduler should look now."""


class LocalTrainings(Trainings):
    """Trainings run by a scheduler in this process (an app on its own: ``create_app(settings)``, tests)."""

    def __init__(self, settings: Settings, *, ended: Callable[[Job], None] | None = None) -> None:
        self.host = SchedulerHost(settings, new_server_id(), ended=ended)
        self.service = JobService(settings, self.host.store, self.host.scheduler.server_id)

    async def start(self) -> None:
        await asyncio.to_thread(self.host.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self.host.stop)

    def submitted(self) -> None:
        self.host.wake()


class SupervisedTrainings(Trainings):
    """A serving process's part: jobs queued under the supervisor's server id, which it is told of.

    The job store is opened on first use (or once the models are warm), never at start-up.
    """

    def __init__(self, settings: Settings, server_id: str, *, notify: Callable[[], None] | None = None) -> None:
        self.service = JobService(settings, None, server_id)
        self._notify = notify

    def submitted(self) -> None:
        if self._notify is not None:
            self._notify()
