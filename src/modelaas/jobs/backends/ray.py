"""Each training as a Ray task that runs the same child process as the process backend.

``--jobs-backend ray`` submits one Ray task per training. The task starts
``python -m modelaas.jobs.child <job-id>`` (in its own process group, as
:class:`~modelaas.jobs.backends.process.ProcessBackend` does, under a small keeper
process: see :data:`KEEPER`), waits for it and returns how it ended. The child does the
rest as usual: it reads the job from the store, captures its output into the job's log,
reports progress and writes the result. So job states, logs, progress, cancelling and
results behave exactly as with the process backend; Ray only decides on which machine
the process runs.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from modelaas.errors import ConfigError
from modelaas.jobs.backends.ray_task import ACCELERATOR_VARIABLES, RAY_WORKER_VARIABLES, run_training
from modelaas.jobs.records import Job
from modelaas.settings import Settings

if TYPE_CHECKING:
    from types import ModuleType

log = logging.getLogger("modelaas.jobs")

MISSING_RAY = "--jobs-backend ray needs Ray: pip install 'modelaas[ray]'"


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise ConfigError(MISSING_RAY) from None
    return ray


class RayBackend:
    """Runs trainings as Ray tasks, on a Ray cluster (``--ray-address``) or a local Ray.

    Without ``--ray-address`` the first training starts a local Ray instance (no
    dashboard), which :meth:`close` stops again. ``--ray-address auto`` (or ``RAY_ADDRESS``)
    attaches to a Ray started with ``ray start`` on this machine; ``host:port`` or
    ``ray://host:10001`` to a cluster, which :meth:`close` merely disconnects from.

    Each task asks Ray for no CPU (``num_cpus=0``): it only waits for its training
    process, and ``--train-workers`` already limits how many trainings run at once. With
    ``num_cpus=1`` a 2-core machine would run at most two trainings whatever
    ``--train-workers`` says, and a third would sit in Ray's queue while its record says
    ``running``. Tasks are spread over the nodes (``SPREAD``): Ray's default placement
    keeps zero-CPU tasks on the node of the server. Tasks are never retried: a training
    whose node dies ends with an error instead of silently starting again.

    Every node must be able to run the training as the server would: the same Python
    environment with modelaas and the models installed, and the same job store and data
    directory. On one machine the default SQLite store and data directory work. On a
    cluster use PostgreSQL (``--jobs-db postgresql://...``; SQLite cannot be shared
    between machines) and put ``--data-dir`` on a filesystem every node mounts at the
    same path (uploaded inputs and training outputs are kept there).
    """

    name = "ray"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ray = import_ray()
        self._lock = threading.Lock()
        self._remote: Any = None
        self._owner: RayConnection | None = None
        """Our ``ray.init`` (None when Ray was initialised in this process by someone else)."""
        self._refs: dict[str, Any] = {}
        self._ended: dict[str, str] = {}
        self._cancelled: dict[str, bool] = {}
        """Jobs we asked Ray to cancel: False after terminate, True after kill."""
        self._server_env = {name: os.environ.get(name) for name in (*RAY_WORKER_VARIABLES, *ACCELERATOR_VARIABLES)}

    # ------------------------------------------------------------------ backend
    def start(self, job: Job) -> dict[str, Any]:
        remote = self._task()
        ref = remote.options(name=f"modelaas-train-{job.id}").remote(job.id, self.settings, self._server_env)
        self._refs[job.id] = ref
        try:
            task: str | None = ref.task_id().hex()
        except Exception:  # Ray Client refs may not know their task
            task = None
        return {"backend": self.name, "task": task, "node": None}  # the task adds node, host and pid

    def poll(self, job_id: str) -> str | None:
        if job_id in self._ended:
            return self._ended[job_id]
        ref = self._refs.get(job_id)
        if ref is None:
            return "unknown Ray task"
        ready, _ = self._ray.wait([ref], timeout=0)
        if not ready:
            return None
        try:
            how = str(self._ray.get(ref))
        except self._ray.exceptions.RayError as exc:
            how = describe_ray_error(exc, self._ray)
        self._ended[job_id] = how
        return how

    def terminate(self, job_id: str) -> None:
        """Cancel the task: it sends SIGTERM to the training, SIGKILL after the grace period."""
        self._cancel(job_id, force=False)

    def kill(self, job_id: str) -> None:
        """Kill the task's worker; the training kills its process group when its parent dies."""
        self._cancel(job_id, force=True)

    def forget(self, job_id: str) -> None:
        self._refs.pop(job_id, None)
        self._ended.pop(job_id, None)
        self._cancelled.pop(job_id, None)

    def close(self) -> None:
        with self._lock:
            refs = list(self._refs.values())
            for job_id in list(self._refs):
                self.kill(job_id)
            if refs:
                try:
                    self._ray.wait(refs, num_returns=len(refs), timeout=5)
                except Exception:  # Ray may be gone already
                    pass
            self._refs.clear()
            self._ended.clear()
            self._cancelled.clear()
            if self._owner is not None:
                self._owner.close()  # stops a local instance we started; only disconnects from a cluster
                self._owner = None
            self._remote = None

    # ----------------------------------------------------------------- helpers
    def _task(self) -> Any:
        with self._lock:
            if self._remote is None:
                ray = self._ray
                if not ray.is_initialized():
                    self._owner = RayConnection(ray, self.settings.ray_address)
                elif self.settings.ray_address:
                    log.info("Ray is initialised already in this process; --ray-address is not used.")
                self._remote = ray.remote(num_cpus=0, max_retries=0, scheduling_strategy="SPREAD")(run_training)
            return self._remote

    def _cancel(self, job_id: str, *, force: bool) -> None:
        ref = self._refs.get(job_id)
        if ref is None or job_id in self._ended:
            return
        if job_id in self._cancelled and (self._cancelled[job_id] or not force):
            return  # asked already (the scheduler repeats kill at every tick)
        self._cancelled[job_id] = force
        try:
            self._ray.cancel(ref, force=force)
        except Exception:  # e.g. it ended meanwhile
            log.debug("Could not cancel the Ray task of training %s.", job_id, exc_info=True)


class RayConnection:
    """``ray.init`` and, at :meth:`close`, ``ray.shutdown``, on a thread of their own.

    Ray starts a local instance's processes with ``PR_SET_PDEATHSIG``, which Linux ties
    to the starting *thread*: started from the scheduler's thread, they would be killed
    (SIGKILL, leaving Ray's agents behind for a minute) as soon as that thread ends,
    before ``ray.shutdown`` could stop them in order. So a thread that lives as long as
    the connection starts and stops it.
    """

    def __init__(self, ray: Any, address: str | None, *, log_to_driver: bool = False) -> None:
        self._ray = ray
        self.address = address or "local"
        self._log_to_driver = log_to_driver
        self._ready = threading.Event()
        self._release = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="modelaas-ray", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            where = "a local Ray" if self.address == "local" else f"Ray at {self.address}"
            raise ConfigError(f"Could not start {where}: {self._error}") from self._error
        log.info("Connected to Ray (%s).", "a local instance" if self.address == "local" else self.address)

    def _run(self) -> None:
        try:
            keep_signal_handling()
            self._ray.init(address=self.address, include_dashboard=False, log_to_driver=self._log_to_driver)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._release.wait()
        self._ray.shutdown()

    def close(self, timeout: float = 60) -> None:
        self._release.set()
        self._thread.join(timeout)


def keep_signal_handling() -> None:
    """Keep Ray's crash handler out of the server process.

    A Ray driver installs a C++ failure-signal handler that also catches SIGTERM: it calls
    the server's own handler, then aborts the process (SIGABRT), so a server that ever ran
    a training could no longer stop gracefully. Python's faulthandler covers real crashes.
    """
    try:
        from ray._private import ray_constants
    except ImportError:
        return
    if not hasattr(ray_constants, "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"):  # Ray before 2.53
        log.warning("This Ray cannot leave SIGTERM to the server: upgrade Ray, or a SIGTERM aborts the server.")
    ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True


def describe_ray_error(exc: BaseException, ray: Any) -> str:
    """How a task ended, for a Ray error ``ray.get`` raised."""
    errors = ray.exceptions
    if isinstance(exc, errors.TaskCancelledError):
        return "Ray task cancelled"
    if isinstance(exc, errors.WorkerCrashedError):
        return "Ray worker died"
    if isinstance(exc, errors.NodeDiedError):
        return "Ray node died"
    if isinstance(exc, errors.RayTaskError):
        cause = getattr(exc, "cause", None)
        return f"Ray task failed: {type(cause).__name__}: {cause}" if cause else "Ray task failed"
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


# ----------------------------------------------------------------------- the task
