"""What runs inside a Ray worker for one training: a keeper process, then the training.

The task starts the same training process as the local backend, through a tiny keeper
process so that the training notices (and takes its process group down) when Ray kills
the worker. It passes the server's environment, not Ray's, and forwards a gentle cancel
as SIGTERM to the training's process group.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from modelaas.jobs.backends.process import child_command, child_env, describe_exit
from modelaas.jobs.ids import PARENT_PID_ENV
from modelaas.settings import Settings

log = logging.getLogger("modelaas.jobs.ray")

TICK = 0.05
"""How often the task looks at its child (and at a cancel)."""
NOTE_RUNNER_FOR = 10.0
"""Seconds the task tries to add where it runs to the job's ``runner`` record."""
RAY_WORKER_VARIABLES = ("OMP_NUM_THREADS", "PYTHONBREAKPOINT", "RAY_JOB_ID", "RAY_RAYLET_PID")
"""Variables Ray sets for its worker processes (``OMP_NUM_THREADS=1`` for a task without
CPUs!). The training gets the server's values of these instead, as with the process backend."""
ACCELERATOR_VARIABLES = (
    "CUDA_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "ONEAPI_DEVICE_SELECTOR",
    "NEURON_RT_VISIBLE_CORES",
    "TPU_VISIBLE_CHIPS",
    "HABANA_VISIBLE_MODULES",
)
"""Ray before 2.5x blanks these for tasks that asked for no accelerator: the training would
see no GPU. A blank value the server does not have itself is dropped."""


def run_training(job_id: str, settings: Settings, server_env: dict[str, str | None]) -> str:
    """The Ray task: run the training's process, wait for it, say how it ended.

    The training runs under a keeper (see :data:`KEEPER`) in a new process group. A cancel
    (``ray.cancel(force=False)``) interrupts this task's main thread; then the group gets
    SIGTERM and, after ``--train-cancel-grace`` seconds, SIGKILL. A forced cancel kills
    this worker; Ray then kills the worker's children (the keeper), and the training,
    whose parent is the keeper, kills its whole group.
    """
    cancelled = threading.Event()
    on_main = threading.current_thread() is threading.main_thread()
    previous: Any = None
    if on_main:
        # a flag rather than KeyboardInterrupt: it cannot land between starting the
        # keeper and keeping hold of it
        previous = signal.signal(signal.SIGINT, lambda signum, frame: cancelled.set())
    keeper: subprocess.Popen[bytes] | None = None
    noter: RunnerNote | None = None
    read_fd, write_fd = os.pipe()
    try:
        try:
            keeper = subprocess.Popen(
                keeper_command(write_fd, child_command(job_id)),
                env=training_env(settings, server_env),
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopping it stops the training's children too
                pass_fds=(write_fd,),
            )
        finally:
            os.close(write_fd)
        noter = RunnerNote(job_id, settings, keeper.pid)
        while keeper.poll() is None:
            if cancelled.is_set():
                stop(keeper, settings.train_cancel_grace)
                break
            noter.step()
            time.sleep(TICK)
    except KeyboardInterrupt:  # not on the main thread, or before our handler was set
        if keeper is None:
            raise
        stop(keeper, settings.train_cancel_grace)
    finally:
        if keeper is not None:
            signal_group(keeper.pid, signal.SIGKILL)  # anything the training left behind in its group
        if noter is not None:
            noter.close()
        if on_main:
            signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
    try:
        status = os.read(read_fd, 32).decode().strip()
    finally:
        os.close(read_fd)
    return describe_exit(int(status) if status else keeper.wait())


KEEPER = """\
# modelaas training keeper: see modelaas.jobs.backends.ray
import os, signal, subprocess, sys
status_fd, parent_env, command = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
signal.signal(signal.SIGTERM, lambda signum, frame: None)
given = os.environ.pop(parent_env, "")
worker = int(given) if given.isdigit() else os.getppid()
proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, env={**os.environ, parent_env: str(os.getpid())})
while True:
    try:
        code = proc.wait(timeout=0.25)
        break
    except subprocess.TimeoutExpired:
        if os.getppid() != worker:
            os.killpg(0, signal.SIGKILL)
try:
    os.write(status_fd, b"%d\\n" % code)
except OSError:
    pass
"""
"""The keeper: runs the training in its process group and writes its exit status to a pipe.

It stands between the Ray worker and the training. When a worker dies, Ray SIGKILLs the
worker's own children, which would kill the training before it could stop its group
(processes it started would live on). With the keeper in between, Ray kills the keeper;
the training sees its parent die and kills the group. If Ray leaves the keeper alive, the
keeper sees the worker die and kills the group itself. A SIGTERM to the group is for the
training: the keeper ignores it. It imports nothing of modelaas, to start fast and small.
"""


def keeper_command(status_fd: int, command: list[str]) -> list[str]:
    return [sys.executable, "-c", KEEPER, str(status_fd), PARENT_PID_ENV, *command]


def training_env(settings: Settings, server_env: dict[str, str | None]) -> dict[str, str]:
    """The child's environment: this worker's, with the server's settings and values of
    the variables Ray sets for its workers; MODELAAS_* variables other than the settings'
    and accelerator variables Ray blanked dropped."""
    env = child_env(settings)
    ours = settings.to_env()
    for name in [n for n in env if n.startswith("MODELAAS_") and n not in ours]:
        del env[name]
    for name, value in server_env.items():
        if name in ACCELERATOR_VARIABLES:
            if env.get(name) == "" and value is None:
                del env[name]
        elif value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to the process group ``proc`` leads, SIGKILL after ``grace`` seconds."""
    signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(TICK)
    if proc.poll() is None:
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait()


def signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class RunnerNote:
    """Adds where the training runs to its job's ``runner`` record: Ray ``node``, ``host``
    and ``pid`` (of the keeper, which leads the training's process group).

    The server stores the record once the task is submitted; that write must come first,
    so this waits (a few seconds at most) until the record names this task.
    """

    EVERY = 0.2

    def __init__(self, job_id: str, settings: Settings, pid: int) -> None:
        self.job_id = job_id
        self.settings = settings
        self.deadline = time.monotonic() + NOTE_RUNNER_FOR
        self.next = 0.0
        self.done = False
        self.store: Any = None
        self.where: dict[str, Any] = {"host": socket.gethostname(), "pid": pid}
        self.task: str | None = None
        try:
            import ray

            if not ray.is_initialized():  # get_runtime_context() would start a Ray
                raise RuntimeError("not in a Ray worker")
            context = ray.get_runtime_context()
            self.task = context.get_task_id()
            self.where["node"] = context.get_node_id()
        except Exception:  # not in a Ray worker
            self.done = True

    def step(self) -> None:
        now = time.monotonic()
        if self.done or now < self.next:
            return
        self.next = now + self.EVERY
        if now > self.deadline:
            self.close()
            return
        try:
            if self.store is None:
                from modelaas.jobs.store import open_store

                self.store = open_store(self.settings)
            job = self.store.get(self.job_id)
            if job is None or job.status.is_terminal:
                self.close()
            elif "task" in job.runner and job.runner["task"] in (self.task, None):  # None: Ray Client
                self.store.set_runner(self.job_id, {**job.runner, **self.where})
                self.close()
        except Exception:  # only informative; the child reports real trouble
            log.debug("Could not note where training %s runs.", self.job_id, exc_info=True)
            self.close()

    def close(self) -> None:
        self.done = True
        if self.store is not None:
            self.store.close()
            self.store = None
