"""A training's process tree (Linux /proc): descendants, identity by start time."""

from __future__ import annotations

import subprocess
import sys
import time

from modelaas.jobs import tree


def test_descendants_are_found_and_a_reused_pid_is_not_killed() -> None:
    script = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 20
        while len(found := tree.descendants(parent.pid)) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        (child,) = found
        assert tree.start_time(child) == found[child]
        assert tree.kill({child: found[child] + 1}) == 0  # not the same process: left alone
        assert tree.start_time(child) is not None
        assert tree.kill(found) == 1
    finally:
        parent.kill()
        parent.wait()


def test_a_watch_remembers_what_it_saw() -> None:
    watch = tree.TreeWatch(999_999_999)  # no such process: nothing seen, nothing killed
    watch.refresh(force=True)
    assert watch.seen == {}
    watch.kill()
