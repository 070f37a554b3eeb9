"""``--model my_model.api:Classifier`` from the folder that holds ``my_model/``: the
``modelaas`` console script imports it (no entry point, no PYTHONPATH), serves it as
``my-model``, and so do its serving and training processes."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

SCRIPT = str(Path(sys.executable).with_name("modelaas"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


MODEL = """
from modelaas import Model, TrainingContext


class Classifier(Model):
    def predict(self, x: int = 1) -> dict:
        return {"doubled": 2 * x}

    def train(self, context: TrainingContext, epochs: int = 1) -> dict:
        return {"epochs": epochs}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's folder: ``my_model/api.py`` beside nothing else, not installed."""
    folder = tmp_path / "project"
    (folder / "my_model").mkdir(parents=True)
    (folder / "my_model" / "__init__.py").write_text("")
    (folder / "my_model" / "api.py").write_text(MODEL)
    return folder


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MODELAAS_DATA_DIR"] = str(tmp_path / "data")
    return env


def script(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, *args], cwd=project, env=env_for(project.parent), capture_output=True, timeout=120)


def test_the_console_script_imports_the_model_from_the_current_directory(project):
    assert Path(SCRIPT).exists()
    r = script(project, "predict", "--model", "my_model.api:Classifier", "--x", "4")
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout)["predictions"] == {"doubled": 8}
    r = script(project, "predict", "--model", "my_model.api:Classifier", "my-model", "--x", "5")
    assert r.returncode == 0, r.stderr.decode()
    r = script(project, "train", "--model", "my_model.api:Classifier", "--epochs", "2")
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout) == {"epochs": 2}
    r = script(project, "get_metadata", "--model", "my_model.api:Classifier")
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout)["name"] == "my-model"
    r = script(project, "models", "--model", "my_model.api:Classifier", "--json")
    assert r.returncode == 0, r.stderr.decode()
    assert [m["name"] for m in json.loads(r.stdout)] == ["my-model"]


@pytest.mark.slow
def test_serve_from_the_current_directory_names_the_model_my_model(project):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [SCRIPT, "serve", "--model", "my_model.api:Classifier", "--listen-port", str(port)],
        cwd=project,
        env=env_for(project.parent),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1].decode()
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.1)
        listing = httpx.get(url + "/v2/models/").json()
        assert [m["name"] for m in listing["models"]] == ["my-model"]
        answer = httpx.post(url + "/v2/models/my-model/predict/", json={"x": 3})
        assert answer.status_code == 200 and answer.json()["predictions"] == {"doubled": 6}
        job = httpx.post(url + "/v2/models/my-model/train/", json={"epochs": 3}).json()
        deadline = time.monotonic() + 60
        record = job
        while record["status"] not in ("done", "error", "cancelled", "interrupted"):
            assert time.monotonic() < deadline, record
            time.sleep(0.2)
            record = httpx.get(f"{url}/v2/models/my-model/train/{job['uuid']}").json()
        assert record["status"] == "done", record  # the training process imported it too
        assert record["result"]["output"] == {"epochs": 3}
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
