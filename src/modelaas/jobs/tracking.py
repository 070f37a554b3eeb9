"""Trainings tracked in MLflow (``--mlflow-tracking-uri``): each training is an MLflow run.

The run is made in the training's process, before the training starts: tags name the job, model and server; params are
the job's arguments (flattened); every ``context.report`` logs its numeric metrics with a
step (``step=<int>`` when the model reports one, else the report's number from 0); at the
end the job's output files are the run's artefacts and the run ends FINISHED, FAILED or
KILLED. The run's id is written next to the job's files (``mlflow-run.json``), where the
version registry finds it.

MLflow is never in the training's way: every call happens in a background thread, with
short timeouts and no retries, and a failure is one warning in the job's log. mlflow is
imported there, late: modelaas works without it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from modelaas.jobs.records import Job

log = logging.getLogger("modelaas.training")

RUN_FILE = "mlflow-run.json"
# MLflow's client retries for minutes by default; an unreachable server must cost seconds
CLIENT_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
}
START_TIMEOUT = 15.0  # seconds a training waits for its run to be made (then it starts; the run may follow)
END_TIMEOUT = 120.0  # seconds the end (artefacts included) may take before the process goes on
KILLED_TIMEOUT = 2.0  # a stopped training has --train-cancel-grace seconds before SIGKILL
QUEUE_SIZE = 10000  # reports waiting for MLflow; beyond it, reports are dropped (the job keeps its own)
PARAM_KEY_MAX = 250  # MLflow's limits
PARAM_VALUE_MAX = 6000
PARAMS_PER_BATCH = 100
METRICS_PER_BATCH = 1000
_KEY_CHARS = re.compile(r"[^\w\-. /]")
STATUS = {"done": "FINISHED", "error": "FAILED", "cancelled": "KILLED", "interrupted": "KILLED"}


def configure_client() -> None:
    """MLflow's HTTP client settings (short timeouts, no retries) unless the environment sets them."""
    for key, value in CLIENT_ENV.items():
        os.environ.setdefault(key, value)


def flatten_params(args: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested arguments as MLflow params: dotted keys, string values within MLflow's limits."""
    out: dict[str, str] = {}
    for key, value in args.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_params(value, f"{name}."))
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
        name = _KEY_CHARS.sub("_", name)[:PARAM_KEY_MAX]
        out[name] = text if len(text) <= PARAM_VALUE_MAX else text[: PARAM_VALUE_MAX - 3] + "..."
    return out


def numeric_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    """The metrics MLflow can keep: numbers (booleans as 0/1), keys in its character set."""
    out = {}
    for key, value in values.items():
        if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isinf(value)):
            out[_KEY_CHARS.sub("_", str(key))[:PARAM_KEY_MAX]] = float(value)
    return out


def read_run(job_dir: Path) -> dict[str, Any] | None:
    """The MLflow run of a training (``run_id``, ``experiment_id``, ``tracking_uri``), if it had one."""
    try:
        data = json.loads((job_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("run_id") else None


class Tracker:
    """What a training reports to, besides the job store: nothing, unless MLflow is configured."""

    def start(self) -> None:
        pass

    def report(self, metrics: Mapping[str, Any]) -> None:
        pass

    def end(self, status: str, output_dir: Path | None = None) -> None:
        pass


def tracker_for(tracking_uri: str | None, experiment: str | None, job: Job, job_dir: Path) -> Tracker:
    if not tracking_uri:
        return Tracker()
    return MlflowTracker(tracking_uri, experiment or job.model, job, job_dir)


class MlflowTracker(Tracker):
    def __init__(self, tracking_uri: str, experiment: str, job: Job, job_dir: Path) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.job = job
        self.job_dir = job_dir
        self.run_id: str | None = None
        self._client: Any = None
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._steps = 0
        self._failed = False
        self._dropped = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """Make the run before the training starts (waiting at most START_TIMEOUT seconds)."""
        self._thread = threading.Thread(target=self._work, name="mlflow-tracking", daemon=True)
        self._thread.start()
        started = threading.Event()

        def start_run() -> None:
            try:
                self._start_run()
            finally:
                started.set()

        self._put(start_run)
        started.wait(START_TIMEOUT)

    def report(self, metrics: Mapping[str, Any]) -> None:
        with self._lock:
            step = metrics.get("step")
            if not isinstance(step, int) or isinstance(step, bool):
                step = self._steps
            self._steps += 1
        values = numeric_metrics({k: v for k, v in metrics.items() if k != "step"})
        if values:
            stamp = int(time.time() * 1000)
            self._put(lambda: self._log_metrics(values, stamp, step))

    def end(self, status: str, output_dir: Path | None = None) -> None:
        """End the run; waits for what is queued, for a bounded time."""
        if self._thread is None:
            return
        state = STATUS.get(status, "FAILED")
        self._put(lambda: self._end_run(state, output_dir if state != "KILLED" else None))
        self._queue.put(None)
        self._thread.join(KILLED_TIMEOUT if state == "KILLED" else END_TIMEOUT)
        if self._thread.is_alive():
            log.warning("MLflow did not answer in time: the run of this training may lack its end.")

    def _put(self, item: Callable[[], None]) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            if not self._dropped:
                self._dropped = True
                log.warning("MLflow is too slow for this training's reports: some are not tracked there.")

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._failed:
                continue  # one failure ends the tracking: an unreachable MLflow costs one timeout
            try:
                item()
            except Exception as exc:  # MLflow unreachable or refusing: the training goes on
                self._failed = True
                log.warning("MLflow tracking failed (%s); this training is not tracked further.", _first_line(exc))

    def _start_run(self) -> None:
        configure_client()
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            self._failed = True
            log.warning("--mlflow-tracking-uri is set but mlflow is not installed (pip install 'modelaas[mlflow]').")
            return
        client = MlflowClient(tracking_uri=self.tracking_uri)
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            try:
                experiment_id = client.create_experiment(self.experiment)
            except Exception:  # made meanwhile by another training
                found = client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise
                experiment_id = found.experiment_id
        tags = {
            "modelaas.job_id": self.job.id,
            "modelaas.model": self.job.model,
            "modelaas.server": self.job.owner,
            "mlflow.runName": f"{self.job.model}-{self.job.id}",
        }
        run = client.create_run(experiment_id, tags=tags)
        self._client, self.run_id = client, run.info.run_id
        self.job_dir.mkdir(parents=True, exist_ok=True)
        (self.job_dir / RUN_FILE).write_text(
            json.dumps({"run_id": self.run_id, "experiment_id": experiment_id, "tracking_uri": self.tracking_uri})
        )
        log.info("Tracked in MLflow: experiment %r, run %s.", self.experiment, self.run_id)
        self._log_params()

    def _log_params(self) -> None:
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in flatten_params(self.job.args).items()]
        for i in range(0, len(params), PARAMS_PER_BATCH):
            self._client.log_batch(self.run_id, params=params[i : i + PARAMS_PER_BATCH])

    def _log_metrics(self, values: dict[str, float], stamp: int, step: int) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(k, v, stamp, step) for k, v in values.items()]
        for i in range(0, len(metrics), METRICS_PER_BATCH):
            self._client.log_batch(self.run_id, metrics=metrics[i : i + METRICS_PER_BATCH])

    def _end_run(self, state: str, output_dir: Path | None) -> None:
        try:
            if output_dir is not None and output_dir.is_dir() and any(output_dir.iterdir()):
                self._client.log_artifacts(self.run_id, str(output_dir))
        finally:
            self._client.set_terminated(self.run_id, status=state)
            _mark_ended(self.job_dir, state)


def _mark_ended(job_dir: Path, state: str) -> None:
    run = read_run(job_dir)
    if run is not None:
        run["status"] = state
        (job_dir / RUN_FILE).write_text(json.dumps(run))


def end_abandoned(job_dir: Path, status: str) -> None:
    """End the run of a training whose process died before ending it (in a thread: never waits)."""
    run = read_run(job_dir)
    if run is None or run.get("status"):
        return

    def end() -> None:
        configure_client()
        try:
            from mlflow.tracking import MlflowClient

            MlflowClient(tracking_uri=run["tracking_uri"]).set_terminated(
                run["run_id"], status=STATUS.get(status, "FAILED")
            )
            _mark_ended(job_dir, STATUS.get(status, "FAILED"))
        except Exception as exc:
            log.warning("The MLflow run %s could not be ended (%s).", run["run_id"], _first_line(exc))

    threading.Thread(target=end, name="mlflow-end", daemon=True).start()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
