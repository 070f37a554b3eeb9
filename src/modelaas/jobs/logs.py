"""Capturing a training process's output (stdout, stderr, logging) into its job's log.

Two threads share the work, so that the training's output never waits on the job store:

* the *reader* empties the pipe that file descriptors 1 and 2 point to into a bounded
  buffer, and does nothing else: it never touches the store and never logs;
* the *writer* stores the buffer in batches. While the store cannot be reached it keeps
  retrying (and the connection is opened again); lines keep arriving in the buffer.

When the buffer is full and the writer is storing (the store answers), the reader waits
for room, so a training that prints faster than the store takes lines is slowed down,
and nothing is lost. When the writer is stalled (its last attempt failed, or one attempt
has lasted ``STALL_SECONDS``), the reader drops the oldest lines not yet stored instead;
once the store is back a line in the log says how many are missing there, and the job's
record counts them.

Whatever the writer logs (its own warnings, the database driver's) goes to the process's
original stderr (the server's log), never into the pipe it is emptying.

A log holds at most ``--train-log-size`` bytes: the line that would pass it is replaced by
a line saying the log is full; later lines are only counted (``log_lines_dropped``).
"""

from __future__ import annotations

import collections
import logging
import os
import select
import sys
import threading
import time
from typing import TextIO

from modelaas.jobs.database import first_line, is_passing
from modelaas.jobs.store import JobGone, JobStore

FLUSH_INTERVAL = 0.25
"""Longest time a line waits in the buffer while the store answers."""
BATCH_LINES = 500
"""A batch this large is stored without waiting for FLUSH_INTERVAL."""
MOST_LINES = 5000
"""The largest batch stored in one transaction (when lines are waiting)."""
STALL_SECONDS = 5.0
"""A store attempt lasting this long counts as stalled: the reader stops waiting for room."""
MAX_LINE = 8192
"""Longer lines are cut into pieces of this many bytes."""
BUFFER_BYTES = 16 * 1024 * 1024
"""How much output is kept in memory while the store cannot be reached."""
LINE_OVERHEAD = 64
"""What a buffered line costs beyond its characters (for the buffer's bound)."""
DRAIN_SECONDS = 2.0
"""After :meth:`OutputCapture.stop`, how long the reader may keep draining the pipe."""
RETRY_FIRST_DELAY = 0.1
RETRY_MAX_DELAY = 5.0
REFUSALS_BEFORE_DROP = 3
"""Attempts at a batch the store refuses for a reason that is not passing, before dropping it."""
MARK = "[modelaas]"

log = logging.getLogger("modelaas.jobs.logs")


class OutputCapture:
    """Redirects file descriptors 1 and 2 into a pipe; two threads store the lines.

    Everything ends up in the log, including output of C extensions and subprocesses.
    Lines are written in batches at most every 0.25 s. A subprocess the model left running
    keeps the pipe open: :meth:`stop` does not wait for it (what is buffered is stored).
    :meth:`stop` waits until every line read is stored, for as long as the store takes to
    come back.
    """

    def __init__(
        self, store: JobStore, job_id: str, *, max_bytes: int | None = None, buffer_bytes: int = BUFFER_BYTES
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.max_bytes = max_bytes
        """The log's limit (``--train-log-size``): beyond it, output is counted, not kept."""
        self.size = 0
        """Bytes of this capture's lines in the log (a newline each)."""
        self.full = False
        self.buffer = LineBuffer(buffer_bytes)
        self.next_line: int | None = None
        """The number the next stored line gets (read from the job's record at start)."""
        self.stored = 0
        """Lines stored by this capture (markers included)."""
        self._reader: threading.Thread | None = None
        self._writer: threading.Thread | None = None
        self._saved: tuple[int, int] | None = None
        self._console: TextIO | None = None
        self._closing = threading.Event()
        self._gone = False

    def start(self) -> None:
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = (os.dup(1), os.dup(2))
        self._console = open(os.dup(2), "w", encoding="utf-8", errors="replace", buffering=1)  # noqa: SIM115
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
        self._writer = threading.Thread(target=self._write_loop, name="log-capture-writer", daemon=True)
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        into_log = logging.StreamHandler(sys.stderr)
        into_log.setFormatter(formatter)
        into_log.addFilter(lambda record: record.thread != self._writer_ident())
        to_console = logging.StreamHandler(self._console)
        to_console.setFormatter(formatter)
        to_console.addFilter(lambda record: record.thread == self._writer_ident())
        root = logging.getLogger()
        root.handlers[:] = [into_log, to_console]
        root.setLevel(logging.INFO)
        self._reader = threading.Thread(target=self._read_loop, args=(read_fd,), name="log-capture-reader", daemon=True)
        self._reader.start()
        self._writer.start()

    def _writer_ident(self) -> int | None:
        return self._writer.ident if self._writer is not None else None

    def stop(self) -> None:
        """Flush and restore the descriptors; returns once every line printed so far is stored."""
        if self._saved is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = self._saved
            os.dup2(out, 1)  # closes the pipe's write ends: the reader sees EOF
            os.dup2(err, 2)
            os.close(out)
            os.close(err)
            self._saved = None
            self._closing.set()  # no EOF while a leftover subprocess holds the pipe: drain, then stop
        for thread in (self._reader, self._writer):
            while thread is not None and thread.is_alive():
                thread.join(0.5)  # in steps: SIGTERM's handler may interrupt the wait
        if self._console is not None:
            root = logging.getLogger()
            root.handlers[:] = [h for h in root.handlers if getattr(h, "stream", None) is not self._console]
            self._console.close()
            self._console = None

    # ------------------------------------------------------------------ reader
    def _read_loop(self, fd: int) -> None:
        partial = b""
        drain_until: float | None = None
        try:
            while True:
                if drain_until is None and self._closing.is_set():
                    drain_until = time.monotonic() + DRAIN_SECONDS
                ready, _, _ = select.select([fd], [], [], FLUSH_INTERVAL if drain_until is None else 0)
                chunk = os.read(fd, 65536) if ready else None
                if chunk:
                    *lines, partial = (partial + chunk).split(b"\n")
                    pieces = [piece for line in lines for piece in _pieces(line)]
                    while len(partial) > MAX_LINE:
                        pieces.append(_text(partial[:MAX_LINE]))
                        partial = partial[MAX_LINE:]
                    self.buffer.put(pieces)
                if chunk == b"" or (drain_until is not None and (not ready or time.monotonic() >= drain_until)):
                    break
        finally:
            os.close(fd)
            if partial:
                self.buffer.put(_pieces(partial))
            self.buffer.close()

    # ------------------------------------------------------------------ writer
    def _write_loop(self) -> None:
        while True:
            lines, dropped, finished = self.buffer.take(MOST_LINES, FLUSH_INTERVAL)
            if (lines or dropped) and not self._gone:
                batch = [missing_marker(dropped), *lines] if dropped else lines
                kept, over = self._within_limit(batch)
                self._store(kept, dropped + over, len(lines) - over)
            if finished:
                return

    def _within_limit(self, batch: list[str]) -> tuple[list[str], int]:
        """The lines of ``batch`` the log still has room for (then a line saying it is full),
        and how many lines of output do not fit."""
        if self.max_bytes is None:
            return batch, 0
        if self.full:
            return [], sum(not line.startswith(MARK) for line in batch)
        kept: list[str] = []
        for i, line in enumerate(batch):
            cost = len(line.encode("utf-8", "replace")) + 1
            if self.size + cost > self.max_bytes:
                self.full = True
                cut = batch[i:]
                return [*kept, limit_marker(self.max_bytes)], sum(not c.startswith(MARK) for c in cut)
            self.size += cost
            kept.append(line)
        return kept, 0

    def _store(self, batch: list[str], dropped: int, output: int) -> None:
        """Store ``batch`` (``output`` lines of output, the rest markers) and count ``dropped``
        lines missing; retry until stored."""
        if not batch and not dropped:
            return
        delay = RETRY_FIRST_DELAY
        refusals = 0
        warned = False
        while True:
            self.buffer.storing(True)
            try:
                if self.next_line is None:
                    job = self.store.get(self.job_id)
                    if job is None:
                        raise JobGone(self.job_id)
                    self.next_line = job.log_lines
                self.next_line = self.store.add_logs(self.job_id, batch, first=self.next_line, dropped=dropped)
                self.stored += len(batch)
                self.buffer.storing(False)
                if warned:
                    log.warning("Training %s: the job store is back; its log goes on.", self.job_id)
                return
            except JobGone:
                self._gone = True  # deleted meanwhile: nothing more can be stored
                return
            except Exception as exc:
                self.buffer.storing(False, failed=True)
                if not is_passing(exc):
                    refusals += 1
                    if refusals >= REFUSALS_BEFORE_DROP:
                        log.error("Training %s: %d log lines could not be stored: %s", self.job_id, output, exc)
                        self.buffer.count_dropped(output + dropped)
                        return
                if not warned:
                    log.warning(
                        "Training %s: log lines cannot be stored (%s); keeping up to %d MiB of them and retrying.",
                        self.job_id,
                        first_line(exc),
                        self.buffer.limit // (1024 * 1024),
                    )
                    warned = True
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY)


class LineBuffer:
    """Lines waiting to be stored, about ``limit`` bytes at most.

    :meth:`put` waits for room while the writer is storing, and drops the oldest lines
    (counting them) while the writer is stalled; :meth:`take` answers how many went
    missing before the lines it returns.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lines: collections.deque[str] = collections.deque()
        self._size = 0
        self._dropped = 0
        self._closed = False
        self._failed = False
        self._storing_since: float | None = None
        self._changed = threading.Condition()

    def put(self, lines: list[str]) -> None:
        if not lines:
            return
        cost = sum(len(line) + LINE_OVERHEAD for line in lines)
        with self._changed:
            while self._size + cost > self.limit and self._lines and not self._stalled():
                self._changed.wait(0.1)
            self._lines.extend(lines)
            self._size += cost
            while self._size > self.limit and self._lines:
                self._size -= len(self._lines.popleft()) + LINE_OVERHEAD
                self._dropped += 1
            if len(self._lines) >= BATCH_LINES:
                self._changed.notify_all()

    def _stalled(self) -> bool:
        since = self._storing_since
        return self._failed or (since is not None and time.monotonic() - since >= STALL_SECONDS)

    def storing(self, active: bool, *, failed: bool = False) -> None:
        """The writer starts (True) or ends (False) an attempt to store a batch."""
        with self._changed:
            self._storing_since = time.monotonic() if active else None
            if not active:
                self._failed = failed
            self._changed.notify_all()

    def count_dropped(self, count: int) -> None:
        with self._changed:
            self._dropped += count

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def take(self, most: int, wait: float) -> tuple[list[str], int, bool]:
        """Up to ``most`` lines (waiting up to ``wait`` s for a batch), the count missing
        before them, and whether the buffer is closed and now empty."""
        with self._changed:
            if len(self._lines) < BATCH_LINES and not self._closed:
                self._changed.wait(wait)
            count = min(most, len(self._lines))
            lines = [self._lines.popleft() for _ in range(count)]
            self._size -= sum(len(line) + LINE_OVERHEAD for line in lines)
            dropped, self._dropped = self._dropped, 0
            self._changed.notify_all()  # room for the reader
            return lines, dropped, self._closed and not self._lines and not self._dropped


def missing_marker(count: int) -> str:
    what, them = ("1 line of output is", "it") if count == 1 else (f"{count} lines of output are", "them")
    return (
        f"{MARK} {what} missing here: the job store could not take {them} in time "
        "(it was unreachable for long; see the server's log)."
    )


def limit_marker(max_bytes: int) -> str:
    return (
        f"{MARK} The log reached its limit of {max_bytes:,} bytes (--train-log-size): later output is not "
        "kept; the job's record counts the lines (log_lines_dropped)."
    )


def _pieces(raw: bytes) -> list[str]:
    """One line of output, cut into pieces of at most MAX_LINE bytes."""
    return [_text(raw[i : i + MAX_LINE]) for i in range(0, max(len(raw), 1), MAX_LINE)]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")
