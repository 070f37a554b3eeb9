"""Prometheus metrics (``prometheus-client``), summed over every process of a server.

The supervisor of ``modelaas serve`` gives its server a fresh directory for the metric
files of all its processes (:func:`prepare_multiprocess`, before ``prometheus_client`` is
imported anywhere: it reads ``PROMETHEUS_MULTIPROC_DIR`` once, at import); each process
writes its own values there and a scrape of ``/metrics`` (answered by any serving process)
adds them up, those of processes that died included (a dead process's live gauges are
dropped by :func:`process_died`). An app on its own keeps them in memory.

Where the work happens records it through :func:`current` (the gate, the runtime, the
scheduler, uploads, URL fetches); with metrics off that is a stand-in whose methods do
nothing. Models may record their own series with ``prometheus_client`` directly: they
are exported with these (docs/operations.md).
"""

from __future__ import annotations

import bisect
import os
import platform
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SLOW = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class NoMetrics:
    """Metrics off: every recording does nothing."""

    active = False

    def request(self, model: str, route: str, method: str, status: int, seconds: float) -> None:
        pass

    def predicted(self, model: str, model_seconds: float, wait_seconds: float) -> None:
        pass

    def refused(self, model: str, reason: str) -> None:
        pass

    def sample(self, running: int, waiting: int) -> None:
        pass

    def flush(self) -> None:
        pass

    def restarted(self) -> None:
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
    """The series of one process (see docs/operations.md for each)."""

    active = True

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # no *_created series: one exposition whether one process or many
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "modelaas_requests", "HTTP requests answered.", ["model", "route", "method", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "modelaas_request_duration_seconds",
            "Time from a request's arrival to the end of its answer.",
            ["model", "route", "method"],
            buckets=FAST,
            registry=r,
        )
        self.model_seconds = Histogram(
            "modelaas_model_duration_seconds", "Time inside the model's predict.", ["model"], buckets=FAST, registry=r
        )
        self.wait_seconds = Histogram(
            "modelaas_queue_wait_seconds",
            "Time a prediction waited for its turn at the model.",
            ["model"],
            buckets=FAST,
            registry=r,
        )
        self.running = Gauge(
            "modelaas_predictions_running", "Predictions running now.", multiprocess_mode="livesum", registry=r
        )
        self.waiting = Gauge(
            "modelaas_predictions_waiting",
            "Predictions waiting for a turn now.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.refusals = Counter(
            "modelaas_predictions_refused",
            "Predictions refused: overloaded (503, the wait queue was full) or timeout (504).",
            ["model", "reason"],
            registry=r,
        )
        self.restarts = Counter(
            "modelaas_worker_restarts", "Serving processes that died and were replaced.", registry=r
        )
        self.submitted = Counter("modelaas_trainings_submitted", "Training jobs submitted.", ["model"], registry=r)
        self.ended = Counter(
            "modelaas_trainings_finished", "Training jobs ended, by final status.", ["model", "status"], registry=r
        )
        self.training_seconds = Histogram(
            "modelaas_training_duration_seconds",
            "Time a training job ran, from start to end.",
            ["model", "status"],
            buckets=SLOW,
            registry=r,
        )
        self.upload_bytes = Counter("modelaas_upload_bytes", "Bytes of files uploaded with requests.", registry=r)
        self.fetches = Counter("modelaas_url_fetches", "URL inputs fetched, by result.", ["result"], registry=r)
        build = Gauge(
            "modelaas_build_info",
            "Always 1: the modelaas and Python versions.",
            ["version", "python"],
            multiprocess_mode="max",
            registry=r,
        )
        build.labels(version(), platform.python_version()).set(1)
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str, int], _Tally] = {}
        self._models: dict[str, tuple[_Tally, _Tally]] = {}

    # The hot path (every request, every prediction) adds to plain tallies under one lock, about
    # a microsecond; flush() moves them into the metric files, every second and before a scrape.
    def request(self, model: str, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            tally = self._requests.get((model, route, method, status))
            if tally is None:
                tally = self._requests[(model, route, method, status)] = _Tally(
                    self.request_seconds.labels(model, route, method),
                    self.requests.labels(model, route, method, str(status)),
                )
            tally.add(seconds)

    def predicted(self, model: str, model_seconds: float, wait_seconds: float) -> None:
        with self._lock:
            tallies = self._models.get(model)
            if tallies is None:
                tallies = self._models[model] = (
                    _Tally(self.model_seconds.labels(model)),
                    _Tally(self.wait_seconds.labels(model)),
                )
            tallies[0].add(model_seconds)
            tallies[1].add(wait_seconds)

    def flush(self) -> None:
        """Move what the hot path tallied into the metrics (and their files): every second, before
        a scrape, at shutdown. What a process that is killed tallied in its last second is lost."""
        with self._lock:
            ready = [t.take() for t in self._requests.values() if t.count]
            ready += [t.take() for pair in self._models.values() for t in pair if t.count]
        for apply in ready:
            apply()

    def refused(self, model: str, reason: str) -> None:
        self.refusals.labels(model, reason).inc()

    def sample(self, running: int, waiting: int) -> None:
        self.running.set(running)
        self.waiting.set(waiting)

    def restarted(self) -> None:
        self.restarts.inc()

    def training_submitted(self, model: str) -> None:
        self.submitted.labels(model).inc()

    def training_ended(self, model: str, status: str, seconds: float | None) -> None:
        self.ended.labels(model, status).inc()
        if seconds is not None:
            self.training_seconds.labels(model, status).observe(seconds)

    def uploaded(self, size: int) -> None:
        self.upload_bytes.inc(size)

    def fetched(self, result: str) -> None:
        self.fetches.labels(result).inc()

    def exposition(self) -> bytes:
        """The text a Prometheus scrape gets: every process's series (and the models' own)."""
        from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

        self.flush()
        if self.multiprocess:
            from prometheus_client.multiprocess import MultiProcessCollector

            merged = CollectorRegistry()
            MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry) + generate_latest(REGISTRY)


class _Tally:
    """Observations of one histogram child (and the count of one counter child) not yet flushed."""

    __slots__ = ("buckets", "count", "counter", "histogram", "sum")

    def __init__(self, histogram: Any, counter: Any = None) -> None:
        self.histogram = histogram
        self.counter = counter
        self.buckets = [0] * len(histogram._upper_bounds)
        self.count = 0
        self.sum = 0.0

    def add(self, value: float) -> None:
        self.buckets[bisect.bisect_left(self.histogram._upper_bounds, value)] += 1
        self.count += 1
        self.sum += value

    def take(self) -> Callable[[], None]:
        """What to apply to the metrics (outside the lock); the tally starts again from zero."""
        buckets, count, total = self.buckets, self.count, self.sum
        self.buckets, self.count, self.sum = [0] * len(buckets), 0, 0.0
        histogram, counter = self.histogram, self.counter

        def apply() -> None:
            add_to_histogram(histogram, buckets, total)
            if counter is not None:
                counter.inc(count)

        return apply


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


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("modelaas")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def current() -> NoMetrics:
    """This process's metrics (the do-nothing stand-in unless :func:`install` was called)."""
    return _current


def install() -> NoMetrics:
    """Turn metrics on in this process (once; later calls return the same object)."""
    global _current
    if not _current.active:
        _current = Metrics()
    return _current


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
