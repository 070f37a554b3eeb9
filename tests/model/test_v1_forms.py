"""v1 models are called as DEEPaaS 0.5-1.3 called them (one dict) or as the seed describes
(one call per item), chosen per function from its signature, or forced by a setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelaas.model.adapters import V1Adapter
from modelaas.model.files import File
from modelaas.model.v1calls import takes_one_dict

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


@pytest.mark.parametrize(
    ("source", "dict_form"),
    [
        ("def f(args): pass", True),
        ("def f(*args): pass", True),
        ("def f(*args, **kwargs): pass", True),
        ("def f(data): pass", True),
        ("def f(data, **kwargs): pass", False),
        ("def f(url, *args): pass", False),
        ("def f(path, threshold=0.5): pass", False),
        ("def f(**kwargs): pass", False),
        ("def f(self_args, /): pass", True),
    ],
)
def test_the_form_is_read_from_the_signature(source, dict_form):
    space: dict = {}
    exec(source, space)
    assert takes_one_dict(space["f"]) is dict_form


def _upload(tmp_path: Path, name: str, data: bytes) -> File:
    path = tmp_path / name
    path.write_bytes(data)
    return File("data", str(path), "image/jpeg", name)


def test_dict_form_gets_files_urls_and_test_args_with_defaults(make_client):
    client = make_client("v1_dict")
    files = [("data", ("cat.jpg", b"JFIF-cat", "image/jpeg")), ("data", ("dog.jpg", b"JFIF-dog!", "image/jpeg"))]
    for url in ("/v1/models/v1-dict/predict", "/v2/models/v1-dict/predict/"):
        answer = client.post(url, files=files, data={"threshold": "0.8"})
        assert answer.status_code == 200, answer.text
        got = answer.json() if url.startswith("/v1") else answer.json()["predictions"]
        assert got == {
            "filenames": ["cat.jpg", "dog.jpg"],
            "content_types": ["image/jpeg", "image/jpeg"],
            "head": "JFIF",
            "saved": 8,
            "urls": None,
            "threshold": 0.8,
            "outputpath": "/tmp",  # the default, as its JSON text
        }


def test_dict_form_predict_url_gets_every_url_at_once(make_client):
    client = make_client("v1_dict", pass_unresolved_urls=True)
    urls = ["http://one.invalid/a.jpg", "http://two.invalid/b.jpg"]
    answer = client.post("/v1/models/v1-dict/predict", params=[("url", u) for u in urls])
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"urls": urls, "threshold": 0.5}


def test_the_predict_file_stub_is_never_called(tmp_path):
    import v1_dict

    adapter = V1Adapter("v1-dict", v1_dict)
    out = adapter.predict(
        {"data": [_upload(tmp_path, "a.jpg", b"JFIF")], "url": [], "threshold": "0.5", "outputpath": '"/tmp"'}
    )
    assert out["filenames"] == ["a.jpg"]


def test_dict_form_train_and_an_old_argumentless_train():
    import v1_dict

    assert V1Adapter("v1-dict", v1_dict).train({"epochs": "3"}) == {"epochs": 3, "keys": ["epochs"]}

    class Old:
        def train(self):
            return "trained"

    assert V1Adapter("old", Old()).train({}) == "trained"


def test_seed_form_models_keep_working(make_client):
    client = make_client("v1_seed")
    answer = client.post("/v1/models/v1-seed/predict", files={"data": ("x.bin", b"12345")})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"size": 10, "kwargs": {"scale": "2"}}


def test_a_setting_forces_either_form(make_client):
    seed = make_client("v1_dict", v1_call_form="seed").post("/v1/models/v1-dict/predict", files={"data": ("x", b"1")})
    assert seed.status_code == 200, seed.text
    assert seed.json() == "Not implemented (predict_file)"  # forced: the seed's predict_file, here a stub
    forced = V1Adapter("v1-seed", __import__("v1_seed"), call_form="dict")
    # forced dict form on a seed model: its predict_url(url, **kwargs) gets the one dict as `url`
    assert forced.predict({"data": [], "url": ["http://a.invalid/"], "scale": "2"})["url"] == {
        "scale": "2",
        "url": ["http://a.invalid/"],
        "urls": ["http://a.invalid/"],
    }


def test_the_cli_calls_the_dict_form_too(tmp_path):
    image = tmp_path / "cat.jpg"
    image.write_bytes(b"JFIF-cli")
    env = {**os.environ, "PYTHONPATH": str(MODELS), "MODELAAS_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "modelaas", "predict", "--model", "v1_dict", "v1-dict", "--data", str(image)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["predictions"]["filenames"] == ["cat.jpg"]


def test_seed_predict_url_with_star_args_gets_the_test_args_in_order():
    class Seed:
        def get_test_args(self):
            return {"a": {"default": "1"}, "b": {"default": "2"}}

        def predict_url(self, url, *args):
            return [url, *args]

    adapter = V1Adapter("seed", Seed())
    kwargs = adapter.predict_params.validate({"url": ["http://x.invalid/"]})
    assert adapter.predict(kwargs) == ["http://x.invalid/", "1", "2"]
