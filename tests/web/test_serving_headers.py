"""Predict answers say which generation answered and which registered version it serves."""

from __future__ import annotations

import pytest

from support import load_fixture

np = pytest.importorskip("numpy")


@pytest.fixture
def client(make_client, settings):
    served = load_fixture("v2_basic", settings=settings)
    served.serve(4, 7, None)  # version 4, generation 7 (as Runtime.load sets them from the job store)
    seed = load_fixture("v1_seed", settings=settings)
    seed.serve(None, 2, None)
    iris = load_fixture("tensors_typed:Iris", "iris", settings=settings)
    iris.serve(1, 3, None)
    plain = load_fixture("v2_basic", "plain", settings=settings)
    return make_client(served, seed, iris, plain)


def test_v2_predict_carries_the_generation_and_the_version(client):
    r = client.post("/v2/models/v2-basic/predict/", data={"count": "1"})
    assert r.status_code == 200
    assert r.headers["x-modelaas-generation"] == "7" and r.headers["x-modelaas-model-version"] == "4"


def test_a_model_never_changed_answers_generation_0_without_a_version(client):
    r = client.post("/v2/models/plain/predict/", data={"count": "1"})
    assert r.headers["x-modelaas-generation"] == "0" and "x-modelaas-model-version" not in r.headers


def test_v1_predict_carries_the_generation(client):
    r = client.post("/v1/models/v1-seed/predict", files={"data": ("a.txt", b"12345")})
    assert r.status_code == 200, r.text
    assert r.headers["x-modelaas-generation"] == "2" and "x-modelaas-model-version" not in r.headers
    v2 = client.post("/v2/models/v1-seed/predict/", files={"data": ("a.txt", b"12345")})
    assert v2.headers["x-modelaas-generation"] == "2"


def test_oip_infer_carries_the_generation_and_the_version(client):
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
    r = client.post("/v2/models/iris/infer", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["x-modelaas-generation"] == "3" and r.headers["x-modelaas-model-version"] == "1"
