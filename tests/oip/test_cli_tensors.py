"""Tensor arguments on the command line: nested JSON or a .npy file, validated like every argument."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def predict(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(MODELS), "MODELAAS_DATA_DIR": str(tmp_path / "data")}
    cmd = [sys.executable, "-m", "modelaas", "predict", "--model", "tensors_typed:Iris", "tensors-typed", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def test_help_says_datatype_and_shape(tmp_path):
    done = predict(tmp_path, "--help")
    assert done.returncode == 0
    assert "--x JSON|FILE.npy" in done.stdout and "FP32" in done.stdout and "[-1, 4]" in done.stdout


def test_a_npy_file_and_json_text(tmp_path):
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.6, 3.0, 5.6, 2.0]], dtype=np.float32)
    np.save(tmp_path / "rows.npy", rows)
    done = predict(tmp_path, "--x", str(tmp_path / "rows.npy"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["predictions"] == [0, 2]
    done = predict(tmp_path, "--x", "[[6.6, 3.0, 5.6, 2.0]]")
    assert json.loads(done.stdout)["predictions"] == [2]


def test_a_wrong_shape_or_not_json(tmp_path):
    done = predict(tmp_path, "--x", "[[1, 2, 3]]")
    assert done.returncode != 0 and "shape [1, 3]" in done.stderr
    done = predict(tmp_path, "--x", "nope")
    assert done.returncode != 0 and ".npy" in done.stderr
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    done = predict(tmp_path, "--x", str(tmp_path / "objects.npy"))
    assert done.returncode != 0 and "without pickles" in done.stderr
