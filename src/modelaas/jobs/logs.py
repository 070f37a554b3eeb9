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
DRAIN_SECONDS = 2.0
"""After :meth:`OutputCapture.stop`, how long the reader may keep draining the pipe."""


class OutputCapture:
    """Redirects file descriptors 1 and 2 into a pipe; a thread stores the lines.

    Everything ends up in the log, including output of C extensions and subprocesses.
    Lines are written in batches at most every 0.25 s. A subprocess the model left running
    keeps the pipe open: :meth:`stop` does not wait for it (what is buffered is stored).
    """

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store = store
        self.job_id = job_id
        self._thread: threading.Thread | None = None
        self._saved: tuple[int, int] | None = None
        self._closing = threading.Event()

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
        self._closing.set()  # no EOF while a leftover subprocess holds the pipe: drain, then stop
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _pump(self, fd: int) -> None:
        pending: list[str] = []
        partial = b""
        last = time.monotonic()
        drain_until: float | None = None
        try:
            while True:
                if drain_until is None and self._closing.is_set():
                    drain_until = time.monotonic() + DRAIN_SECONDS
                ready, _, _ = select.select([fd], [], [], FLUSH_INTERVAL if drain_until is None else 0)
                chunk = os.read(fd, 65536) if ready else None
                if chunk:
                    *lines, partial = (partial + chunk).split(b"\n")
                    pending.extend(_text(line) for line in lines)
                    if len(partial) > MAX_LINE:
                        pending.append(_text(partial))
                        partial = b""
                now = time.monotonic()
                ended = chunk == b"" or (drain_until is not None and (not ready or now >= drain_until))
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
        except Exception:  # losing a log line must not kill the training
            pass


def _text(raw: bytes) -> str:
    return raw[:MAX_LINE].decode("utf-8", errors="replace").rstrip("\r")
