"""The Prometheus series of modelaas (docs/operations.md), built when first needed.

Building them imports ``prometheus_client`` (tens of milliseconds): a serving process does
it once its models are ready, not on the way there.
"""

from __future__ import annotations

import platform
from typing import Any

FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Buckets of request, model and queue times, in seconds."""
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
"""Buckets of batch sizes (requests per call of a ``@batched`` model)."""
SLOW = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
"""Buckets of training durations, in seconds."""


class Series:
    """The metric objects of one process, registered in their own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # no *_created series: one exposition whether one process or many
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
        self.batch_size = Histogram(
            "modelaas_batch_size",
            "Requests per call of a @batched model.",
            ["model"],
            buckets=BATCH_SIZES,
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
        self.reloads = Counter(
            "modelaas_reloads", "Rolling reloads started (an activated version or a reload request).", registry=r
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
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("modelaas")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"
