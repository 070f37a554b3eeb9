"""The built-in demo model looks right at first sight: its defaults give a non-empty answer,
ranked by score."""

from __future__ import annotations

import hashlib

import pytest

from modelaas.model.adapters import TypedAdapter
from modelaas.model.demo import LABELS, DemoModel

PATH = "/v2/models/modelaas-demo/predict/"
FILES = [b"", b"x", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, bytes(range(256)) * 40]


@pytest.fixture
def demo(make_client):
    return make_client(TypedAdapter("modelaas-demo", DemoModel()))


def predict(client, content: bytes, **data: object) -> dict:
    r = client.post(PATH, files={"image": ("photo.jpg", content, "image/jpeg")}, data=data)
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


@pytest.mark.parametrize("content", FILES)
def test_defaults_score_every_label_best_first(demo, content):
    answer = predict(demo, content)
    scores = answer["scores"]
    assert [s["rank"] for s in scores] == [1, 2, 3]
    assert sorted(s["label"] for s in scores) == sorted(LABELS)
    values = [s["score"] for s in scores]
    assert values == sorted(values, reverse=True) and all(v > 0 for v in values)
    assert abs(sum(values) - 1) < 1e-3
    assert answer["sha256"] == hashlib.sha256(content).hexdigest()
    assert answer["expected"] == next(s for s in scores if s["label"] == "cat")  # the default label
    assert predict(demo, content) == answer  # the same file, the same answer


def test_arguments_change_the_answer(demo):
    content = FILES[3]
    ranked = predict(demo, content)["scores"]
    assert predict(demo, content, top_k="1")["scores"] == ranked[:1]
    assert predict(demo, content, threshold=str(ranked[1]["score"]))["scores"] == ranked[:2]
    inverted = predict(demo, content, invert="true")["scores"]
    assert inverted[0]["label"] == ranked[-1]["label"] and [s["rank"] for s in inverted] == [1, 2, 3]
    favoured = predict(demo, content, weights=["0", "0", "1"])["scores"]
    assert favoured[0] == {"rank": 1, "label": "bird", "score": 1.0}
    assert predict(demo, content, label="dog")["expected"]["label"] == "dog"
    r = demo.post(PATH, files={"image": ("p.jpg", content)}, data={"top_k": str(len(LABELS) + 1)})
    assert r.status_code == 422 and list(r.json()) == ["top_k"]
