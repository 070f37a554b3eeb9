"""Prometheus metrics (``prometheus-client``), summed over every process of a server.

The supervisor of ``modelaas serve`` gives its server a fresh directory for the metric
files of all its processes (:func:`prepare_multiprocess`, before ``prometheus_client`` is
imported anywhere: it reads ``PROMETHEUS_MULTIPROC_DIR`` once, at import); each process
writes its own values there and a scrape of ``/metrics`` (answered by any serving process)
adds them up, those of processes that died included (a dead process's live gauges are
dropped by :func:`process_died`). An app on its own keeps them in memory.

Where the work happens records it through :func:`current` (the gate, the runtime, the
scheduler, uploads, URL fetches); with metrics off that is a stand-in whose methods do
nothing. The hot path (each request, each prediction) adds to plain tallies, about a
microsecond; :meth:`Metrics.flush` moves them into the metrics every second and before a
scrape. Models may record their own series with ``prometheus_client`` directly: they are
exported with these (docs/operations.md).
"""

from __future__ import annotations

import bisect
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from modelaas.telemetry.series import BATCH_SIZES, FAST, Series, version

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BOUNDS = (*FAST, float("inf"))
SIZES_BOUNDS = (*BATCH_SIZES, float("inf"))

__all__ = ["CONTENT_TYPE", "Metrics", "NoMetrics", "current", "install", "prepare_multiprocess", "version"]


class NoMetrics:
    """Metrics off: every recording does nothing."""

    active = False

    def request(self, model: str, route: str, method: str, status: int, seconds: float) -> None:
        pass

    def predicted(self, model: str, model_seconds: float, wait_seconds: float) -> None:
        pass

    def batched(self, model: str, model_seconds: float, waits: list[float]) -> None:
        pass

    def refused(self, model: str, reason: str) -> None:
        pass

    def sample(self, running: int, waiting: int) -> None:
        pass

    def flush(self) -> None:
        pass

    def restarted(self) -> None:
        pass

    def reloaded(self) -> None:
        pass

    def training_submitted(self, model: str) -> None:
        pass

    def training_ended(self, model: str, status: str, seconds: float | None) -> None:
        pass

    def uploaded(self, size: int) -> None:
        pass

    def fetched(self, result: str) -> None:
        pass


class Metrics(NoMetrics):
    """The metrics of one process (see docs/operations.md for each series).

    The series themselves (and ``prometheus_client``) are built on first need
    (:meth:`series`): what the hot path records before that waits in its tallies.
    """

    active = True

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self._series: Series | None = None
        self._building = threading.Lock()
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str, int], _Tally] = {}
        self._models: dict[str, tuple[_Tally, _Tally]] = {}
        self._batches: dict[str, _Tally] = {}

    def series(self) -> Series:
        """The metric objects (imports ``prometheus_client`` the first time)."""
        if self._series is None:
            with self._building:
                if self._series is None:
                    self._series = Series()
        return self._series

    # --------------------------------------------------------------- hot path
    def request(self, model: str, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            tally = self._requests.get((model, route, method, status))
            if tally is None:
                tally = self._requests[(model, route, method, status)] = _Tally()
            tally.add(seconds)

    def predicted(self, model: str, model_seconds: float, wait_seconds: float) -> None:
        with self._lock:
            model_tally, wait_tally = self._tallies(model)
            model_tally.add(model_seconds)
            wait_tally.add(wait_seconds)

    def batched(self, model: str, model_seconds: float, waits: list[float]) -> None:
        """A batch call of a ``@batched`` model: its time in the model (once), each request's wait, its size."""
        with self._lock:
            model_tally, wait_tally = self._tallies(model)
            model_tally.add(model_seconds)
            for wait in waits:
                wait_tally.add(wait)
            sizes = self._batches.get(model)
            if sizes is None:
                sizes = self._batches[model] = _Tally(SIZES_BOUNDS)
            sizes.add(len(waits))

    def _tallies(self, model: str) -> tuple[_Tally, _Tally]:
        """A model's model-time and queue-wait tallies (under ``_lock``)."""
        tallies = self._models.get(model)
        if tallies is None:
            tallies = self._models[model] = (_Tally(), _Tally())
        return tallies

    def flush(self) -> None:
        """Move what the hot path tallied into the metrics (and their files): every second, before
        a scrape, at shutdown. What a process that is killed tallied in its last second is lost."""
        s = self.series()
        with self._lock:
            requests = [(key, t.take()) for key, t in self._requests.items() if t.count]
            models = [(model, t.take(), u.take()) for model, (t, u) in self._models.items() if t.count]
            batches = [(model, t.take()) for model, t in self._batches.items() if t.count]
        for (model, route, method, status), (buckets, count, total) in requests:
            add_to_histogram(s.child(s.request_seconds, model, route, method), buckets, total)
            s.child(s.requests, model, route, method, str(status)).inc(count)
        for model, (buckets, _, total), (wait_buckets, _, wait_total) in models:
            add_to_histogram(s.child(s.model_seconds, model), buckets, total)
            add_to_histogram(s.child(s.wait_seconds, model), wait_buckets, wait_total)
        for model, (buckets, _, total) in batches:
            add_to_histogram(s.child(s.batch_size, model), buckets, total)

    # ------------------------------------------------------------ the others
    def refused(self, model: str, reason: str) -> None:
        s = self.series()
        s.child(s.refusals, model, reason).inc()

    def sample(self, running: int, waiting: int) -> None:
        s = self.series()
        s.running.set(running)
        s.waiting.set(waiting)

    def restarted(self) -> None:
        self.series().restarts.inc()

    def reloaded(self) -> None:
        self.series().reloads.inc()

    def training_submitted(self, model: str) -> None:
        s = self.series()
        s.child(s.submitted, model).inc()

    def training_ended(self, model: str, status: str, seconds: float | None) -> None:
        s = self.series()
        s.child(s.ended, model, status).inc()
        if seconds is not None:
            s.child(s.training_seconds, model, status).observe(seconds)

    def uploaded(self, size: int) -> None:
        self.series().upload_bytes.inc(size)

    def fetched(self, result: str) -> None:
        s = self.series()
        s.child(s.fetches, result).inc()

    def exposition(self) -> bytes:
        """The text a Prometheus scrape gets: every process's series (and the models' own)."""
        from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

        self.flush()
        if self.multiprocess:
            from prometheus_client.multiprocess import MultiProcessCollector

            merged = CollectorRegistry()
            MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.series().registry) + generate_latest(REGISTRY)


class _Tally:
    """Observations not yet flushed: counts per bucket (of :data:`FAST` by default), how many, their sum."""

    __slots__ = ("bounds", "buckets", "count", "sum")

    def __init__(self, bounds: tuple[float, ...] = _BOUNDS) -> None:
        self.bounds = bounds
        self.buckets = [0] * len(bounds)
        self.count = 0
        self.sum = 0.0

    def add(self, value: float) -> None:
        self.buckets[bisect.bisect_left(self.bounds, value)] += 1  # the first bucket whose bound is >= value
        self.count += 1
        self.sum += value

    def take(self) -> tuple[list[int], int, float]:
        """``(buckets, count, sum)``; the tally starts again from zero."""
        taken = (self.buckets, self.count, self.sum)
        self.buckets, self.count, self.sum = [0] * len(self.bounds), 0, 0.0
        return taken


def add_to_histogram(child: Any, buckets: list[int], total: float) -> None:
    """Add bucket counts and a sum to a prometheus_client histogram child at once.

    Uses its ``_buckets`` and ``_sum`` values (prometheus_client has no public call for this;
    tests/web/test_observability.py checks the result against ``observe``).
    """
    child._raise_if_not_observable()
    child._sum.inc(total)
    for value, n in zip(child._buckets, buckets, strict=True):
        if n:
            value.inc(n)


NO_METRICS = NoMetrics()
_current: NoMetrics = NO_METRICS


def current() -> NoMetrics:
    """This process's metrics (the do-nothing stand-in unless :func:`install` was called)."""
    return _current


def install() -> NoMetrics:
    """Turn metrics on in this process (once; later calls return the same object). Imports nothing."""
    global _current
    if not _current.active:
        _current = Metrics()
    return _current


METRICS_DIR_PREFIX = "modelaas-metrics-"


def make_multiprocess_dir() -> Path:
    """A new private directory for a server's metric files, named after the server's pid.

    Directories of servers that are gone (killed with SIGKILL: they could not delete theirs)
    are removed first.
    """
    sweep_multiprocess_dirs(Path(tempfile.gettempdir()))
    return Path(tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-"))


def sweep_multiprocess_dirs(parent: Path) -> list[Path]:
    """Remove the metric directories in ``parent`` of servers that no longer run (this host's)."""
    from modelaas.processes import pid_alive

    removed = []
    for path in parent.glob(f"{METRICS_DIR_PREFIX}*-*"):
        pid = path.name[len(METRICS_DIR_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def prepare_multiprocess(directory: Path) -> None:
    """Make ``directory`` (emptied) where this process and the ones it starts keep their metric files.

    Call before ``prometheus_client`` is imported in this process.
    """
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)
    os.environ[MULTIPROC_ENV] = str(directory)


def process_died(pid: int) -> None:
    """Drop the live gauges of a serving process that is gone (its counters stay in the sums)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
