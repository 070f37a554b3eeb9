"""Versions in MLflow's Model Registry: registering one there, importing one from there
(modelaas.versions.mlflow), against a real MLflow server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelaas.errors import BadRequest, MlflowFailed
from modelaas.settings import Settings
from modelaas.versions import mlflow as versions_mlflow
from support import ServerProcess, free_port, wait_for


def settings_for(uri: str | None, tmp_path: Path) -> Settings:
    return Settings(mlflow_tracking_uri=uri, data_dir=tmp_path / "data")


def test_a_version_without_a_tracked_training_goes_to_the_registry_with_its_files(
    mlflow_server: str, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    files = tmp_path / "v1"
    (files / "sub").mkdir(parents=True)
    (files / "weights.bin").write_bytes(b"\x00\x01")
    (files / "sub" / "labels.txt").write_text("cat\ndog\n")
    s = settings_for(mlflow_server, tmp_path)
    number = versions_mlflow.register(s, "registry-files", 1, files, description="first")
    assert number == 1
    client = MlflowClient(tracking_uri=mlflow_server)
    made = client.get_model_version("registry-files", "1")
    assert made.tags["modelaas.version"] == "1"
    assert made.description == "first"
    assert {f.path for f in client.list_artifacts(made.run_id)} == {"weights.bin", "sub"}

    # and it comes back from there, files and all
    back = versions_mlflow.download(s, "models:/registry-files/1", tmp_path / "download")
    assert (back / "weights.bin").read_bytes() == b"\x00\x01"
    assert (back / "sub" / "labels.txt").read_text() == "cat\ndog\n"


def test_a_version_of_a_tracked_training_points_at_its_run(mlflow_server: str, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.create_experiment("registry-run")
    run_id = client.create_run(experiment).info.run_id
    output = tmp_path / "job" / "output"
    output.mkdir(parents=True)
    (output / "model.txt").write_text("w=2\n")
    client.log_artifacts(run_id, str(output))
    (tmp_path / "job" / "mlflow-run.json").write_text(
        json.dumps({"run_id": run_id, "experiment_id": experiment, "tracking_uri": mlflow_server})
    )
    s = settings_for(mlflow_server, tmp_path)
    first = versions_mlflow.register(s, "registry-run", 1, output, job_dir=tmp_path / "job")
    second = versions_mlflow.register(s, "registry-run", 2, output, job_dir=tmp_path / "job")
    assert (first, second) == (1, 2)
    assert client.get_model_version("registry-run", "2").run_id == run_id  # no new run: the training's
    assert len(client.search_runs([experiment])) == 1


def test_an_unreachable_mlflow_leaves_a_registration_unregistered_with_a_warning(
    mlflow_module: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = settings_for(f"http://127.0.0.1:{free_port()}", tmp_path)
    with caplog.at_level("WARNING", logger="modelaas.versions"):
        assert versions_mlflow.register(s, "m", 1, tmp_path) is None
    assert "is not in MLflow's Model Registry" in caplog.text
    with pytest.raises(MlflowFailed):
        versions_mlflow.download(s, "models:/m/1", tmp_path / "d")


def test_imports_need_a_models_uri_and_a_configured_mlflow(mlflow_server: str, tmp_path: Path) -> None:
    for bad in ("runs:/abc/model", "models:/", "models:/x/y/z", 3, None, "models:/x/1 ; rm"):
        with pytest.raises(BadRequest, match="models:/name/3"):
            versions_mlflow.parse_uri(bad)
    with pytest.raises(BadRequest, match="--mlflow-tracking-uri"):
        versions_mlflow.download(settings_for(None, tmp_path), "models:/x/1", tmp_path / "d")
    with pytest.raises(BadRequest, match="no model version"):
        versions_mlflow.download(settings_for(mlflow_server, tmp_path), "models:/nothing-here/4", tmp_path / "d")
    assert versions_mlflow.register(settings_for(None, tmp_path), "m", 1, tmp_path) is None


# ------------------------------------------------------------------ over the routes, on real servers
TRAIN = "/v2/models/trainer/train/"
VERSIONS = "/v2/models/trainer/versions/"


def finished_training(srv: ServerProcess, epochs: str) -> str:
    job_id: str = httpx.post(srv.url + TRAIN, data={"epochs": epochs}, timeout=30).json()["uuid"]
    wait_for(
        lambda: httpx.get(f"{srv.url}{TRAIN}{job_id}", timeout=10).json()["status"] == "done",
        timeout=60,
        what="the training to finish",
    )
    return job_id


def test_a_registered_training_is_in_mlflows_registry_and_imports_back(
    server: Callable[..., ServerProcess], mlflow_server: str
) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    srv = server("--model", "trainer:Trainer", "--mlflow-tracking-uri", mlflow_server)
    job_id = finished_training(srv, "2")
    answer = httpx.post(srv.url + VERSIONS, json={"job": job_id, "description": "two epochs"}, timeout=60)
    assert answer.status_code == 201, answer.text
    version = answer.json()["version"]
    made = client.search_model_versions(f"name = 'trainer' and tag.`modelaas.version` = '{version}'")
    assert len(made) == 1, made
    run = client.get_run(made[0].run_id)  # the training's own run, not a copy
    assert run.data.tags["modelaas.job_id"] == job_id
    assert made[0].description == "two epochs"
    before = len(client.search_model_versions("name = 'trainer'"))

    imported = httpx.post(srv.url + VERSIONS, json={"mlflow": f"models:/trainer/{made[0].version}"}, timeout=60)
    assert imported.status_code == 201, imported.text
    record = imported.json()
    assert record["source"] == {"kind": "mlflow", "uri": f"models:/trainer/{made[0].version}"}
    assert record["version"] == version + 1
    assert {f["path"] for f in record["files"]} == {"weights.txt", "sub/log.csv"}
    assert record["args"]["epochs"] == "2"  # the run's params
    assert record["metrics"]["loss"] == 0.5
    assert len(client.search_model_versions("name = 'trainer'")) == before  # not registered there twice
    files = httpx.get(f"{srv.url}{VERSIONS}", timeout=10).json()["versions"][0]["files"]
    assert files == record["files"]


def test_imports_from_mlflow_refused_with_400(server: Callable[..., ServerProcess], mlflow_server: str) -> None:
    plain = server("--model", "trainer:Trainer")
    answer = httpx.post(plain.url + VERSIONS, json={"mlflow": "models:/trainer/1"}, timeout=30)
    assert answer.status_code == 400 and "--mlflow-tracking-uri" in answer.json()["message"]

    srv = server("--model", "trainer:Trainer", "--mlflow-tracking-uri", mlflow_server)
    for body, words in (
        ({"mlflow": "runs:/x/model"}, "models:/name/3"),
        ({"mlflow": 7}, "models:/name/3"),
        ({"mlflow": "models:/no-such-model/3"}, "no model version"),
        ({"mlflow": "models:/trainer/1", "description": 5}, "'description' must be a string"),
    ):
        answer = httpx.post(srv.url + VERSIONS, json=body, timeout=30)
        assert answer.status_code == 400, (body, answer.text)
        assert words in answer.json()["message"]
    assert httpx.get(srv.url + VERSIONS, timeout=10).json()["versions"] == []
