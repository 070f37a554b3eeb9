"""A training's process tree: kept together, and stopped whole (Linux).

A training may start processes that leave its process group and session, as daemons do
(a double fork and ``setsid``): killing the group misses them, and once their parent
exits they are re-parented to init. So:

* the training process is a *child subreaper* (``PR_SET_CHILD_SUBREAPER``): orphans among
  its descendants are re-parented to it, not to init, so they stay in its tree;
* it kills its whole tree when it ends, when SIGTERM stops it, and when the server dies
  (:func:`kill_descendants`);
* the server keeps a recent picture of each training's tree (:class:`TreeWatch`) and kills
  what it knew of it when it kills the training, or when the training died without
  cleaning up (a crash, SIGKILL).

Processes are identified by pid and start time, so a pid reused meanwhile is not killed.
What this does not contain: processes started outside the tree on the training's behalf
(through a service manager, a container runtime, ``at``), and a descendant started in the
last instant before the training process was killed by something else than the server.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time

PR_SET_CHILD_SUBREAPER = 36
SNAPSHOT_EVERY = 0.5
"""How often the server refreshes its picture of a running training's tree (seconds)."""

Procs = dict[int, int]
"""pid -> start time (clock ticks since boot), the identity of a process."""


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants; False where Linux cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def start_time(pid: int) -> int | None:
    """The start time of process ``pid`` (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[-1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
            found.extend(int(x) for x in fh.read().split())
    return found


def descendants(pid: int) -> Procs:
    """Every descendant of ``pid`` now, with its start time."""
    found: Procs = {}
    todo = [pid]
    while todo:
        for child in _children(todo.pop()):
            if child not in found:
                started = start_time(child)
                if started is not None:
                    found[child] = started
                    todo.append(child)
    return found


def kill(procs: Procs, sig: int = signal.SIGKILL) -> int:
    """Send ``sig`` to those of ``procs`` that still are the same processes; how many were."""
    sent = 0
    for pid, started in procs.items():
        if start_time(pid) == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
                sent += 1
    return sent


def kill_descendants(rounds: int = 5) -> None:
    """SIGKILL every descendant of this process (again, while new ones keep appearing)."""
    me = os.getpid()
    for _ in range(rounds):
        if not kill({p: t for p, t in descendants(me).items() if not _zombie(p)}):
            return
        time.sleep(0.01)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


class TreeWatch:
    """The server's recent picture of one training's tree (everything seen in it so far)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seen: Procs = {}
        self._next = 0.0

    def refresh(self, *, now: float | None = None, force: bool = False) -> None:
        """Look at the tree again (at most every SNAPSHOT_EVERY seconds unless ``force``)."""
        now = time.monotonic() if now is None else now
        if force or now >= self._next:
            self._next = now + SNAPSHOT_EVERY
            self.seen.update(descendants(self.pid))

    def kill(self) -> None:
        """SIGKILL every process seen in the tree that is still the same process."""
        kill(self.seen)
