"""Each training in its own local process group, a child of the server.

Stopping a training stops its whole tree: its process group, and the descendants that
left the group (see :mod:`modelaas.jobs.tree`), which the backend keeps a picture of.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import Any

from modelaas.jobs.ids import PARENT_PID_ENV
from modelaas.jobs.records import Job
from modelaas.jobs.tree import TreeWatch
from modelaas.settings import Settings


def child_command(job_id: str) -> list[str]:
    return [sys.executable, "-m", "modelaas.jobs.child", job_id]


def child_env(settings: Settings) -> dict[str, str]:
    """The training's environment; call it in the process that starts the training."""
    env = {**os.environ, **settings.to_env()}
    env.pop("MODELAAS_TOKENS", None)  # secrets the training does not need stay with the server
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the server's metric files: a training's counts are not its
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    if settings.train_cuda_visible_devices is not None:  # training on GPUs of its own
        env["CUDA_VISIBLE_DEVICES"] = settings.train_cuda_visible_devices
    # the training's parent: if it dies before the training watches it, the training still notices
    env[PARENT_PID_ENV] = str(os.getpid())
    return env


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class ProcessBackend:
    name = "process"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._trees: dict[str, TreeWatch] = {}

    def start(self, job: Job) -> dict[str, Any]:
        proc = subprocess.Popen(
            child_command(job.id),
            env=child_env(self.settings),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopping it stops its children too
        )
        self._procs[job.id] = proc
        self._trees[job.id] = TreeWatch(proc.pid)
        return {"backend": self.name, "host": socket.gethostname(), "pid": proc.pid}

    def poll(self, job_id: str) -> str | None:
        proc = self._procs.get(job_id)
        if proc is None:
            return "unknown process"
        tree = self._trees.get(job_id)
        if tree is not None:
            tree.refresh()  # before it may end: then its orphans leave its tree
        code = proc.poll()
        return None if code is None else describe_exit(code)

    def terminate(self, job_id: str) -> None:
        self._signal(job_id, signal.SIGTERM)

    def kill(self, job_id: str) -> None:
        tree = self._trees.get(job_id)
        if tree is not None:
            tree.refresh(force=True)
        self._signal(job_id, signal.SIGKILL)
        if tree is not None:
            tree.kill()  # what left the group (its own session, a double fork)

    def forget(self, job_id: str) -> None:
        self.kill(job_id)  # anything its process left behind
        self._procs.pop(job_id, None)
        self._trees.pop(job_id, None)

    def close(self) -> None:
        for job_id in list(self._procs):
            self.kill(job_id)
            proc = self._procs.pop(job_id)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def _signal(self, job_id: str, sig: signal.Signals) -> None:
        proc = self._procs.get(job_id)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
