"""Files reach v2 models as DEEPaaS's own UploadedFile when deepaas is importable."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from modelaas.model import files
from modelaas.model.files import File

STAND_IN = Path(__file__).resolve().parents[1] / "fixtures" / "deepaas_stand_in"


@pytest.fixture
def deepaas_installed(monkeypatch):
    """The stand-in deepaas importable here and in trainings; the class looked up afresh."""
    monkeypatch.syspath_prepend(str(STAND_IN))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(STAND_IN), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr(files, "_deepaas_class", files._UNRESOLVED)
    yield
    for name in [m for m in sys.modules if m == "deepaas" or m.startswith("deepaas.")]:
        del sys.modules[name]
    files._deepaas_class = files._UNRESOLVED


def _post(client, url):
    return client.post(
        url,
        files=[
            ("image", ("cat.png", b"\x89PNG one", "image/png")),
            ("more", ("a.txt", b"aaa", "text/plain")),
            ("more", ("b.txt", b"bbbb", "text/plain")),
        ],
    )


def test_predict_gets_deepaas_uploaded_files_single_and_in_lists(deepaas_installed, make_client):
    client = make_client("v2_isinstance")
    answer = _post(client, "/v2/models/v2-isinstance/predict/")
    assert answer.status_code == 200, answer.text
    got = answer.json()["predictions"]
    assert got["image"] == {
        "name": "image",
        "original_filename": "cat.png",
        "content_type": "image/png",
        "sha256": hashlib.sha256(b"\x89PNG one").hexdigest(),
        "size": 8,
    }
    assert [m["original_filename"] for m in got["more"]] == ["a.txt", "b.txt"]


def test_training_gets_deepaas_uploaded_files(deepaas_installed, make_client):
    from support import wait_for

    client = make_client("v2_isinstance")
    answer = _post(client, "/v2/models/v2-isinstance/train/")
    assert answer.status_code == 200, answer.text
    url = f"/v2/models/v2-isinstance/train/{answer.json()['uuid']}"
    record = wait_for(
        lambda: (r := client.get(url).json())["status"] not in ("queued", "running") and r,
        timeout=60,
        what="the training",
    )
    assert record["status"] == "done", record
    assert record["result"]["output"]["image"]["original_filename"] == "cat.png"
    assert len(record["result"]["output"]["more"]) == 2


def test_without_deepaas_models_get_modelaas_files(monkeypatch):
    monkeypatch.setattr(files, "_deepaas_class", files._UNRESOLVED)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "deepaas_stand_in" not in p])
    f = File("image", "/tmp/x", "image/png", "x.png")
    assert files.as_deepaas_files({"image": f, "n": 1}) == {"image": f, "n": 1}
    assert files.deepaas_file_class() is None


def test_the_deepaas_class_keeps_modelaas_extras(deepaas_installed, tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"12345")
    out = files.as_deepaas_files({"f": File("f", str(path), "application/octet-stream", "f.bin"), "x": [1]})
    from deepaas.model.v2.wrapper import UploadedFile

    assert isinstance(out["f"], UploadedFile) and out["x"] == [1]
    assert (out["f"].size, out["f"].read_bytes(), out["f"].path) == (5, b"12345", path)
    with out["f"].open() as fh:
        assert fh.read() == b"12345"


def test_the_cli_hands_deepaas_uploaded_files_too(tmp_path):
    import json
    import subprocess

    models = Path(__file__).resolve().parents[1] / "fixtures" / "models"
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG two")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(STAND_IN), str(models)]),
        "MODELAAS_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelaas",
            "predict",
            "--model",
            "v2_isinstance",
            "v2-isinstance",
            "--image",
            str(image),
        ],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["predictions"]["image"]["original_filename"] == "cat.png"
