"""Where a serving process spools uploads, and sweeping what dead processes left."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from modelaas.processes import pid_alive


def process_spool(upload_dir: Path) -> Path:
    """This process's own spool directory (``<upload_dir>/<host>-<pid>``)."""
    return upload_dir / f"{socket.gethostname()}-{os.getpid()}"


def sweep(upload_dir: Path) -> list[Path]:
    """Remove spool directories of this host's processes that no longer exist.

    A serving process killed with SIGKILL cannot delete its uploads; the next process to
    start removes them. Directories of other hosts (a shared data dir) are left alone.
    """
    removed: list[Path] = []
    prefix = f"{socket.gethostname()}-"
    if not upload_dir.is_dir():
        return removed
    for path in upload_dir.iterdir():
        tail = path.name[len(prefix) :] if path.name.startswith(prefix) else ""
        if not tail.isdigit():
            continue
        pid = int(tail)
        if pid != os.getpid() and pid_alive(pid):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed
