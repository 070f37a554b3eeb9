"""Trainings tracked in MLflow (--mlflow-tracking-uri): a real modelaas server, real training
processes and a real MLflow tracking server (tests/mlflow_tracking/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from modelaas.jobs.tracking import PARAM_KEY_MAX, PARAM_VALUE_MAX, flatten_params, numeric_metrics
from modelaas.settings import Settings
from support import ServerProcess, free_port, wait_for

TRAIN = "/v2/models/trainer/train/"


def train(srv: ServerProcess, data: dict[str, str], *, until: set[str] | None = None) -> dict[str, Any]:
    answer = httpx.post(srv.url + TRAIN, data=data, timeout=30)
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["uuid"]
    final = until or {"done", "error", "cancelled", "interrupted"}

    def ended() -> dict[str, Any] | None:
        record: dict[str, Any] = httpx.get(f"{srv.url}{TRAIN}{job_id}", timeout=10).json()
        return record if record["status"] in final else None

    return wait_for(ended, timeout=60, what=f"training {job_id} to reach {final}", every=0.1)


def run_of(mlflow_url: str, experiment: str, job_id: str) -> Any:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_url)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id], filter_string=f"tags.`modelaas.job_id` = '{job_id}'")
    assert len(runs) == 1, runs
    return client, runs[0]


@pytest.fixture
def tracked(server: Callable[..., ServerProcess], mlflow_server: str) -> Callable[..., ServerProcess]:
    def start(*args: str) -> ServerProcess:
        return server("--model", "trainer:Trainer", "--mlflow-tracking-uri", mlflow_server, *args)

    return start


def test_a_training_is_an_mlflow_run_with_params_metrics_and_artefacts(
    tracked: Callable[..., ServerProcess], mlflow_server: str
) -> None:
    srv = tracked()
    job = train(srv, {"epochs": "3"})
    assert job["status"] == "done", job
    client, run = run_of(mlflow_server, "trainer", job["uuid"])  # the experiment defaults to the model's name
    assert run.info.status == "FINISHED", httpx.get(f"{srv.url}{TRAIN}{job['uuid']}/logs", timeout=10).text
    assert run.data.tags["modelaas.model"] == "trainer"
    assert run.data.tags["modelaas.server"]
    assert run.data.params["epochs"] == "3"
    assert run.data.params["fail"] == "false"
    loss = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, round(m.value, 3)) for m in sorted(loss, key=lambda m: m.step)] == [(0, 1.0), (1, 0.5), (2, 0.333)]
    progress = client.get_metric_history(run.info.run_id, "progress")
    assert sorted(m.step for m in progress) == [0, 1, 2]
    top = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert top == {"weights.txt", "sub"}
    assert [f.path for f in client.list_artifacts(run.info.run_id, "sub")] == ["sub/log.csv"]


def test_failed_and_cancelled_trainings_end_their_runs_failed_and_killed(
    tracked: Callable[..., ServerProcess], mlflow_server: str
) -> None:
    srv = tracked("--mlflow-experiment", "trainer-ends")
    failed = train(srv, {"epochs": "1", "fail": "true"})
    assert failed["status"] == "error"
    assert run_of(mlflow_server, "trainer-ends", failed["uuid"])[1].info.status == "FAILED"

    answer = httpx.post(srv.url + TRAIN, data={"epochs": "1000", "seconds": "0.05"}, timeout=30)
    job_id = answer.json()["uuid"]
    wait_for(
        lambda: httpx.get(f"{srv.url}{TRAIN}{job_id}", timeout=10).json().get("progress"),
        timeout=60,
        what="the training to report",
    )
    assert httpx.delete(f"{srv.url}{TRAIN}{job_id}", timeout=30).json()["status"] == "cancelled"
    _, run = run_of(mlflow_server, "trainer-ends", job_id)
    assert run.info.status == "KILLED"
    assert run.data.metrics["loss"] > 0


def test_a_training_process_that_dies_has_its_run_ended_failed_by_the_server(
    tracked: Callable[..., ServerProcess], mlflow_server: str
) -> None:
    srv = tracked("--mlflow-experiment", "trainer-crash")
    job = train(srv, {"epochs": "1", "crash": "true"})  # a segfault: the process cannot end its run
    assert job["status"] == "error", job
    wait_for(
        lambda: run_of(mlflow_server, "trainer-crash", job["uuid"])[1].info.status == "FAILED",
        timeout=30,
        what="the run to be ended",
    )


def test_an_unreachable_mlflow_costs_a_warning_not_the_training(
    server: Callable[..., ServerProcess], mlflow_module: Any
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    srv = server("--model", "trainer:Trainer", "--mlflow-tracking-uri", nobody)
    job = train(srv, {"epochs": "2"})
    assert job["status"] == "done", job
    assert job["metrics"]["loss"] == 0.5
    log = httpx.get(f"{srv.url}{TRAIN}{job['uuid']}/logs", timeout=10).text
    assert "MLflow tracking failed" in log
    assert "not tracked further" in log


def test_params_are_flattened_and_kept_within_mlflow_limits() -> None:
    params = flatten_params({"opt": {"lr": 0.1, "betas": [0.9, 0.99]}, "name": "x", "k" * 300: "v" * 7000})
    assert params["opt.lr"] == "0.1"
    assert params["opt.betas"] == "[0.9, 0.99]"
    assert params["name"] == "x"
    assert len(params["k" * PARAM_KEY_MAX]) == PARAM_VALUE_MAX
    assert numeric_metrics({"loss": 0.5, "ok": True, "note": "text", "bad key!": 1}) == {
        "loss": 0.5,
        "ok": 1.0,
        "bad key_": 1.0,
    }


def test_mlflow_tracking_uri_comes_from_mlflows_own_variable_below_modelaas_own() -> None:
    assert Settings.load(environ={"MLFLOW_TRACKING_URI": "http://a"}).mlflow_tracking_uri == "http://a"
    both = {"MLFLOW_TRACKING_URI": "http://a", "MODELAAS_MLFLOW_TRACKING_URI": "http://b"}
    assert Settings.load(environ=both).mlflow_tracking_uri == "http://b"
    assert Settings.load(environ={}).mlflow_tracking_uri is None
