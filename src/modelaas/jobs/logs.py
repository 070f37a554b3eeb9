"""Capturing a training process's output (stdout, stderr, logging) into its job's log."""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
import time

from modelaas.jobs.store import JobStore

FLUSH_INTERVAL = 0.25
MAX_LINE = 8192


class OutputCapture:
    """Redirects file descriptors 1 and 2 into a pipe; a thread stores the lines.

    Everything ends up in the log, including output of C extensions and subprocesses.
    Lines are written in batches at most every 0.25 s.
    """

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store = store
        self.job_id = job_id
        self._thread: threading.Thread | None = None
        self._saved: tuple[int, int] | None = None

    def start(self) -> None:
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = (os.dup(1), os.dup(2))
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        self._thread = threading.Thread(target=self._pump, args=(read_fd,), name="log-capture", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Flush and restore the descriptors; every line printed so far gets stored."""
        if self._saved is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = self._saved
        os.dup2(out, 1)  # closes the pipe's write ends: the reader sees EOF
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        self._saved = None
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _pump(self, fd: int) -> None:
        pending: list[str] = []
        partial = b""
        last = time.monotonic()
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], FLUSH_INTERVAL)
                chunk = os.read(fd, 65536) if ready else None
                if chunk:
                    *lines, partial = (partial + chunk).split(b"\n")
                    pending.extend(_text(line) for line in lines)
                    if len(partial) > MAX_LINE:
                        pending.append(_text(partial))
                        partial = b""
                ended = chunk == b""
                now = time.monotonic()
                if pending and (ended or now - last >= FLUSH_INTERVAL or len(pending) >= 500):
                    self._store(pending)
                    pending = []
                    last = now
                if ended:
                    break
        finally:
            os.close(fd)
        if partial:
            self._store([_text(partial)])

    def _store(self, lines: list[str]) -> None:
        try:
            self.store.add_logs(self.job_id, lines)
        except Exception:  # noqa: BLE001 - losing a log line must not kill the training
            pass


def _text(raw: bytes) -> str:
    return raw[:MAX_LINE].decode("utf-8", errors="replace").rstrip("\r")
