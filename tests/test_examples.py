"""The example model packages in examples/, served in-process without installing them.

Each example's folder is put on ``sys.path`` and its entry-point target loaded the way an
installed entry point would be; the app is driven with Starlette's TestClient.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelaas.model.adapters import ModelAdapter
from modelaas.model.interface import TrainingContext
from modelaas.model.loader import ModelRef, load
from modelaas.runtime import Runtime
from modelaas.settings import Settings
from modelaas.web.app import create_app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# A 1x1 PNG, and two small "media" files: content does not matter, only that it comes back.
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(24)
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(12)


def _load(monkeypatch: pytest.MonkeyPatch, folder: str, name: str, target: str, group: str) -> ModelAdapter:
    monkeypatch.syspath_prepend(str(EXAMPLES / folder))
    interface = {"deepaas.model": "v1", "deepaas.v2.model": "v2", "modelaas.model": "typed"}[group]
    return load(ModelRef(name, target, interface, group))


def _client(adapter: ModelAdapter, tmp_path: Path, **overrides: Any) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", **overrides)
    with TestClient(create_app(settings, runtime=Runtime(settings, [adapter]))) as client:
        yield client


@pytest.fixture
def seed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TestClient]:
    adapter = _load(monkeypatch, "v1-seed", "seed-model", "seed_model.api", "deepaas.model")
    # the model only parses its URLs; with no DNS here, their hosts cannot be checked
    yield from _client(adapter, tmp_path, pass_unresolved_urls=True)


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(_load(monkeypatch, "v2-demo-app", "demo-app", "demo_app.api", "deepaas.v2.model"), tmp_path)


@pytest.fixture
def typed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TestClient]:
    adapter = _load(
        monkeypatch, "typed-classifier", "typed-classifier", "typed_classifier.model:Classifier", "modelaas.model"
    )
    yield from _client(adapter, tmp_path)


@pytest.fixture(autouse=True)
def _forget_example_modules() -> Iterator[None]:
    """Each test imports the examples afresh from the folder it put on sys.path."""
    yield
    for name in list(sys.modules):
        if name.split(".")[0] in ("seed_model", "demo_app", "typed_classifier"):
            del sys.modules[name]


# ------------------------------------------------------------------ v1: seed-model
TEXT = b"The cat sat.\nThe cat ran!\nA dog barked at the cat\n"
TEXT_STATS = {
    "bytes": len(TEXT),
    "lines": 3,
    "words": 12,
    "top_words": [{"word": "the", "count": 3}, {"word": "cat", "count": 3}, {"word": "sat", "count": 1}],
}


def test_seed_metadata_and_v1_listing(seed: TestClient) -> None:
    entry = seed.get("/v2/models/seed-model/").json()
    assert entry["id"] == entry["name"] == "seed-model"
    assert {k: entry[k] for k in ("Name", "Version", "Author", "License")} == {
        "Name": "seed-model",
        "Version": "0.1.0",
        "Author": "modelaas developers",
        "License": "Apache-2.0",
    }
    assert "Summary" in entry
    listing = seed.get("/v1/models/").json()
    assert [m["id"] for m in listing["models"]] == ["seed-model"]
    assert listing["models"][0]["links"] == [{"rel": "self", "href": "/v1/models/seed-model"}]
    assert seed.get("/v1/models/seed-model").json()["Name"] == "seed-model"


def test_seed_predict_file_on_v2_route(seed: TestClient) -> None:
    r = seed.post("/v2/models/seed-model/predict/", files={"data": ("t.txt", TEXT, "text/plain")})
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "OK", "predictions": TEXT_STATS}


def test_seed_test_args_reach_the_model_as_json_strings(seed: TestClient) -> None:
    r = seed.post(
        "/v2/models/seed-model/predict/?top_words=1&lowercase=false", files={"data": ("t.txt", TEXT, "text/plain")}
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"]["top_words"] == [{"word": "cat", "count": 3}]


def test_seed_predict_url_is_parsed_not_fetched(seed: TestClient) -> None:
    r = seed.post("/v2/models/seed-model/predict/", data={"url": "https://example.org:8443/a/b.txt?x=1&x=2#frag"})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == {
        "url": "https://example.org:8443/a/b.txt?x=1&x=2#frag",
        "scheme": "https",
        "host": "example.org",
        "port": 8443,
        "path": "/a/b.txt",
        "query": {"x": ["1", "2"]},
        "fragment": "frag",
    }


def test_seed_two_urls_answer_a_list(seed: TestClient) -> None:
    r = seed.post("/v2/models/seed-model/predict/?url=http://a.test/1&url=http://b.test/2")
    assert r.status_code == 200, r.text
    assert [p["host"] for p in r.json()["predictions"]] == ["a.test", "b.test"]


def test_seed_data_and_url_together_or_neither_is_400(seed: TestClient) -> None:
    both = seed.post(
        "/v2/models/seed-model/predict/?url=http://a.test/x", files={"data": ("t.txt", TEXT, "text/plain")}
    )
    assert both.status_code == 400
    assert "url" in both.json()["message"] and "data" in both.json()["message"]
    neither = seed.post("/v2/models/seed-model/predict/", data={"top_words": "2"})
    assert neither.status_code == 400
    assert neither.json()["message"] == both.json()["message"]


def test_seed_v1_predict_route_answers_the_bare_output(seed: TestClient) -> None:
    r = seed.post("/v1/models/seed-model/predict", files={"data": ("t.txt", TEXT, "text/plain")})
    assert r.status_code == 200, r.text
    assert r.json() == TEXT_STATS
    assert seed.post("/v1/models/seed-model/predict").status_code == 400


def test_seed_train_gets_strings_and_json_loads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = _load(monkeypatch, "v1-seed", "seed-model", "seed_model.api", "deepaas.model")
    assert adapter.train_params is not None
    kwargs = adapter.train_params.validate({"values": "[2, 4, 9]", "use_median": "true"})
    assert kwargs == {"values": "[2, 4, 9]", "scale": "1.0", "use_median": "true"}
    assert adapter.train(kwargs) == {"fitted": 4.0, "statistic": "median", "samples": 3}
    assert adapter.train(adapter.train_params.validate({}))["fitted"] == 2.5


# --------------------------------------------------------------- v2: demo-app
def _media_files() -> dict[str, tuple[str, bytes, str]]:
    return {
        "demo-image": ("dot.png", PNG, "image/png"),
        "demo-audio": ("tone.wav", WAV, "audio/wav"),
        "demo-video": ("clip.mp4", MP4, "video/mp4"),
    }


def test_demo_predict_with_all_files_is_valid_per_its_schema(demo: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    data = {
        "demo-int": "7",
        "demo-str-choice": "choice3",
        "demo-bool": "false",
        "demo-dict": '{"k": [1, 2]}',
        "demo-list-of-floats": ["1.5", "2"],
    }
    r = demo.post("/v2/models/demo-app/predict/", data=data, files=_media_files())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["args"] == {
        "demo-str": "some-string",
        "demo-str-choice": "choice3",
        "demo-int": 7,
        "demo-int-range": 50,
        "demo-float": 0.1,
        "demo-bool": False,
        "demo-dict": {"k": [1, 2]},
        "demo-list-of-floats": [1.5, 2.0],
    }
    sent = _media_files()
    assert [m["field"] for m in body["media"]] == list(sent)
    for m in body["media"]:
        name, content, ctype = sent[m["field"]]
        assert (m["original_filename"], m["content_type"], m["size"]) == (name, ctype, len(content))
        assert base64.b64decode(m["base64"]) == content
        assert m["sha256"] == hashlib.sha256(content).hexdigest()
    assert abs(sum(body["probabilities"]) - 1) < 1e-5
    # the answer is exactly what the model's own schema accepts
    import demo_app.api as api
    from marshmallow import Schema

    Schema.from_dict(api.schema)().load(body)


def test_demo_accept_png_answers_the_image_bytes(demo: TestClient) -> None:
    r = demo.post(
        "/v2/models/demo-app/predict/", data={"demo-int": "1"}, files=_media_files(), headers={"Accept": "image/png"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/png")
    assert r.content == PNG


def test_demo_missing_required_int_is_422(demo: TestClient) -> None:
    r = demo.post("/v2/models/demo-app/predict/", files=_media_files())
    assert r.status_code == 422
    assert r.json() == {"demo-int": ["Missing data for required field."]}


def test_demo_bad_values_are_422_field_maps(demo: TestClient) -> None:
    files = _media_files()
    del files["demo-video"]
    r = demo.post(
        "/v2/models/demo-app/predict/",
        data={"demo-int": "x", "demo-int-range": "101", "demo-str-choice": "nope", "demo-dict": "[1]"},
        files=files,
    )
    assert r.status_code == 422
    assert r.json() == {
        "demo-int": ["Not a valid integer."],
        "demo-int-range": ["Must be greater than or equal to 1 and less than or equal to 100."],
        "demo-str-choice": ["Must be one of: choice1, choice2, choice3."],
        "demo-dict": ["Not a valid JSON object."],
        "demo-video": ["Missing data for required field."],
    }


def test_demo_train_args_are_described(monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = _load(monkeypatch, "v2-demo-app", "demo-app", "demo_app.api", "deepaas.v2.model")
    assert adapter.train_params is not None
    assert adapter.train_params.validate({}) == {"epoch_num": 3}
    assert adapter.media_types == ("application/json", "image/png")


# ------------------------------------------------------- typed: typed-classifier
def test_typed_predict_answers_the_pydantic_shape(typed: TestClient) -> None:
    r = typed.post("/v2/models/typed-classifier/predict/", json={"features": [6.6, 3.0, 5.6, 2.1], "k": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"label", "neighbours", "metric"}
    assert body["label"] == "virginica" and body["metric"] == "euclidean"
    assert [n["label"] for n in body["neighbours"]] == ["virginica", "versicolor"]
    assert body["neighbours"][0]["distance"] < body["neighbours"][1]["distance"]
    r = typed.post(
        "/v2/models/typed-classifier/predict/",
        data={"features": ["5.0", "3.4", "1.5", "0.2"], "metric": "manhattan"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "setosa" and len(r.json()["neighbours"]) == 1


def test_typed_bad_arguments_are_422(typed: TestClient) -> None:
    url = "/v2/models/typed-classifier/predict/"
    bad_k = typed.post(url, json={"features": [6.6, 3.0, 5.6, 2.1], "k": 9})
    assert bad_k.status_code == 422
    assert list(bad_k.json()) == ["k"]
    missing = typed.post(url, json={"k": 1})
    assert missing.status_code == 422
    assert missing.json() == {"features": ["Missing data for required field."]}
    assert typed.post(url, json={"features": [1.0, 2.0]}).status_code == 422
    assert list(typed.post(url, json={"features": [1, 2, 3, 4], "metric": "cosine"}).json()) == ["metric"]


def test_typed_listing_describes_the_class(typed: TestClient) -> None:
    entry = typed.get("/v2/models/typed-classifier/").json()
    assert entry["labels"] == ["setosa", "versicolor", "virginica"]
    assert entry["description"].startswith("Nearest-centroid classifier")


def test_typed_train_reports_and_writes_its_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    adapter = _load(
        monkeypatch, "typed-classifier", "typed-classifier", "typed_classifier.model:Classifier", "modelaas.model"
    )
    assert adapter.train_params is not None
    kwargs = adapter.train_params.validate({"epochs": "4"})
    assert kwargs == {"epochs": 4, "learning_rate": 0.5}
    reports: list[tuple[float | None, dict[str, object]]] = []

    class Recording(TrainingContext):
        def _on_report(self) -> None:
            reports.append((self.progress, dict(self.metrics)))

    context = Recording(tmp_path / "out")
    result = adapter.train(kwargs, context)
    assert result["epochs"] == 4 and result["centroids_file"] == "centroids.json"
    assert [p for p, _ in reports] == [0.25, 0.5, 0.75, 1.0]
    losses = [m["loss"] for _, m in reports]
    assert losses == sorted(losses, reverse=True)
    saved = json.loads((tmp_path / "out" / "centroids.json").read_text())
    assert set(saved["centroids"]) == {"setosa", "versicolor", "virginica"}
    with pytest.raises(Exception) as info:
        adapter.train_params.validate({"epochs": "0"})
    assert getattr(info.value, "status", None) == 422


def test_typed_warm_reads_the_centroids_of_the_active_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What a training saves is what warm() loads once it is registered and active (docs/versions.md)."""
    target = "typed_classifier.model:Classifier"
    trainer = _load(monkeypatch, "typed-classifier", "typed-classifier", target, "modelaas.model")
    assert trainer.train_params is not None
    trainer.train(
        trainer.train_params.validate({"epochs": "1", "learning_rate": "0.1"}), TrainingContext(tmp_path / "v1")
    )
    saved = json.loads((tmp_path / "v1" / "centroids.json").read_text())["centroids"]

    served = _load(monkeypatch, "typed-classifier", "typed-classifier", target, "modelaas.model")
    served.serve(1, 1, tmp_path / "v1")  # as Runtime.load does for the active version
    served.warm()
    assert served.target.centroids == saved  # type: ignore[attr-defined]

    installed = _load(monkeypatch, "typed-classifier", "typed-classifier", target, "modelaas.model")
    installed.warm()
    assert installed.target.centroids != saved  # type: ignore[attr-defined]  (the built-in data's means)
