"""What runs in the process that runs a model: as under DEEPaaS, only ``warm()`` before
``predict()`` / ``train()``; ``get_*_args()`` run elsewhere. Real server, real trainings, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from support import wait_for

pytestmark = pytest.mark.slow

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def test_serving_and_training_processes_ran_only_warm(server):
    srv = server("--model", "probe_calls", "--workers", "2")
    for _ in range(4):  # both serving processes, whichever answers
        answer = httpx.post(f"{srv.url}/v2/models/probe-calls/predict/", data={"n": "2"}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"]["calls"] == ["warm"]
    job = httpx.post(f"{srv.url}/v2/models/probe-calls/train/", data={"epochs": "2"}, timeout=30).json()

    def ended():
        record = httpx.get(f"{srv.url}/v2/models/probe-calls/train/{job['uuid']}", timeout=30).json()
        return record if record["status"] not in ("queued", "running") else None

    record = wait_for(ended, timeout=60, what="the training to end")
    assert record["status"] == "done", record
    assert record["result"]["output"]["calls"] == ["warm"]  # DEEPaaS's workers warm before they train
    assert record["result"]["output"]["args"] == {"epochs": 2}


@pytest.mark.parametrize("command", ["predict", "train"])
def test_the_cli_runs_the_model_in_a_process_that_ran_only_warm(tmp_path, command):
    env = {**os.environ, "PYTHONPATH": str(MODELS), "MODELAAS_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "modelaas", command, "--model", "probe_calls", "probe-calls"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    out = json.loads(done.stdout)
    calls = out["predictions"]["calls"] if command == "predict" else out["calls"]
    assert calls == ["warm"]
