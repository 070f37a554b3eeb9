"""Predict: argument sources, validation, answers, model errors, files."""

import json
import os
import time

import pytest

from support import spool_files


def test_arguments_from_query_form_and_json(make_client):
    c = make_client("v2_basic")
    url = "/v2/models/v2-basic/predict/"
    q = c.post(url + "?count=2&values=1&values=2.5&flag=true&renamed-arg=r").json()["predictions"]["args"]
    assert (q["count"], q["values"], q["flag"], q["renamed"]) == (2, [1.0, 2.5], True, "r")
    f = c.post(url, data={"count": "3", "values": "[0.5, 1]", "options": '{"a": 1}'}).json()["predictions"]["args"]
    assert (f["count"], f["values"], f["options"]) == (3, [0.5, 1.0], {"a": 1})
    j = c.post(url, json={"count": 4, "values": [1, 2], "flag": False, "options": {"b": 2}}).json()
    assert j["predictions"]["args"]["count"] == 4 and j["predictions"]["args"]["options"] == {"b": 2}
    m = c.post(url, files={"count": (None, "5"), "text": (None, "multi")}).json()["predictions"]["args"]
    assert (m["count"], m["text"]) == (5, "multi")
    # query wins over the body
    assert c.post(url + "?count=6", json={"count": 7}).json()["predictions"]["args"]["count"] == 6


def test_answer_envelope_and_defaults(make_client):
    c = make_client("v2_basic")
    assert c.post("/v2/models/v2-basic/predict/", data={"count": "1"}).json() == {
        "status": "OK",
        "predictions": {
            "args": {
                "text": "hello",
                "count": 1,
                "level": 5,
                "color": "red",
                "ratio": 0.5,
                "flag": False,
                "values": [],
                "options": {},
                "renamed": "x",
            }
        },
    }


def test_validation_errors_are_422_field_maps(make_client):
    c = make_client("v2_basic")
    r = c.post("/v2/models/v2-basic/predict/", data={"level": "11", "color": "blue", "ratio": "x"})
    assert r.status_code == 422
    assert r.json() == {
        "count": ["Missing data for required field."],
        "level": ["Must be greater than or equal to 1 and less than or equal to 10."],
        "color": ["Must be one of: red, green."],
        "ratio": ["Not a valid number."],
    }


def body_of(r):
    """An error body without its request id (checked against the X-Request-ID header)."""
    body = r.json()
    assert body.pop("request_id") == r.headers["x-request-id"]
    return body


def test_aiohttp_http_error_answers_its_status_promptly_and_server_goes_on(make_client):
    c = make_client("v2_http_error")
    start = time.monotonic()
    r = c.post("/v2/models/v2-http-error/predict/", data={"value": "bad"})
    assert (r.status_code, body_of(r)) == (400, {"message": "bad"})
    assert time.monotonic() - start < 1.0
    assert c.post("/v2/models/v2-http-error/predict/", data={"value": "ok"}).json()["predictions"] == {"value": "ok"}
    r = c.post("/v2/models/v2-http-error/predict/", data={"value": "teapot"})
    assert (r.status_code, body_of(r)) == (418, {"message": "I am a teapot"})


def test_plain_model_exception_is_500_with_its_message(make_client):
    c = make_client("v2_raises")
    r = c.post("/v2/models/v2-raises/predict/")
    assert r.status_code == 500
    assert body_of(r) == {"message": "Model 'v2-raises' failed in predict: the model broke on purpose"}
    r = c.post("/v2/models/v2-raises/predict/", data={"how": "notimpl"})
    assert (r.status_code, body_of(r)) == (501, {"message": "Model 'v2-raises' does not implement predict."})


@pytest.mark.parametrize(("how", "named"), [("exit", "SystemExit: 3"), ("interrupt", "KeyboardInterrupt: stop")])
def test_a_model_raising_what_is_no_exception_gets_a_json_500_and_the_server_goes_on(make_client, how, named):
    """Finding: SystemExit or KeyboardInterrupt from a model answered a text 500 without request id."""
    c = make_client("exiting:Exiting")
    r = c.post("/v2/models/exiting/predict/", data={"how": how})
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["request_id"] == r.headers["x-request-id"]
    assert body["message"].startswith("Model 'exiting' failed in predict: ") and named in body["message"]
    assert c.post("/v2/models/exiting/predict/", data={"how": "ok"}).json()["predictions"] == {"ok": True}


def test_model_without_predict_answers_501(make_client):
    r = make_client("train_only").post("/v2/models/train-only/predict/")
    assert (r.status_code, r.json()["message"]) == (501, "Model 'train-only' does not implement predict.")


def test_schema_output_is_validated_and_returned_bare(make_client):
    c = make_client("v2_schema")
    assert c.post("/v2/models/v2-schema/predict/").json() == {"label": "cat", "probability": 0.9}
    r = c.post("/v2/models/v2-schema/predict/", data={"broken": "true"})
    assert r.status_code == 500
    assert r.json()["message"].startswith("Model 'v2-schema' failed in predict: the model's output does not match")


@pytest.mark.parametrize(
    ("accept", "status", "ctype", "body"),
    [
        (None, 200, "application/json", b'{"status":"OK","predictions":{"kind":"json"}}'),
        ("application/json, text/plain, */*", 200, "application/json", None),
        ("*/*", 200, "application/json", None),
        ("image/png", 200, "image/png", b"\x89PNG\r\n\x1a\nnot-really"),
        ("text/plain", 200, "text/plain", b"plain words"),
        ("image/*;q=0.2, text/*", 200, "text/plain", b"plain words"),
        ("video/mp4", 406, "application/json", None),
    ],
)
def test_accept_negotiation(make_client, accept, status, ctype, body):
    c = make_client("v2_accept")
    headers = {"accept": accept} if accept else {}
    r = c.post("/v2/models/v2-accept/predict/", headers=headers)
    assert r.status_code == status
    assert r.headers["content-type"].split(";")[0] == ctype
    if body is not None:
        assert r.content == body


def test_file_output_is_an_attachment(make_client):
    c = make_client("v2_accept")
    r = c.post("/v2/models/v2-accept/predict/", headers={"accept": "application/pdf"})
    assert r.status_code == 200 and r.content == b"%PDF-1.4 fake"
    assert r.headers["content-disposition"].startswith("attachment")


def test_explicit_accept_argument_wins(make_client):
    r = make_client("v2_accept").post("/v2/models/v2-accept/predict/?accept=text/plain")
    assert r.text == "plain words"


def test_an_empty_accept_value_counts_as_not_given(make_client):
    c = make_client("v2_accept")
    assert c.post("/v2/models/v2-accept/predict/?accept=").json()["predictions"] == {"kind": "json"}
    assert c.post("/v2/models/v2-accept/predict/?accept=&accept=text/plain").text == "plain words"
    assert c.post("/v2/models/v2-accept/predict/?accept=&accept=image/gif").status_code == 422  # not a choice


def test_class_targets_are_instantiated_once_and_warmed(make_client):
    import v2_class

    before = v2_class.Model.instances
    c = make_client("v2_class:Model")
    first = c.post("/v2/models/v2-class/predict/", data={"x": "4"}).json()["predictions"]
    assert first == {"double": 8, "warmed": 1, "instances": before + 1}
    assert c.post("/v2/models/v2-class/predict/").json()["predictions"]["instances"] == before + 1


def test_typed_model(make_client, tmp_path):
    c = make_client("typed_basic:Classifier")
    url = "/v2/models/typed-basic/predict/"
    r = c.post(url, json={"features": [1, 2.5], "k": 2, "mode": "exact", "level": 3})
    assert r.json() == {"label": "exact-2-3", "score": 3.5, "size": 0}  # a pydantic answer is the schema
    r = c.post(url + "?features=1&features=2", files={"upload": ("f.bin", b"abcd")})
    assert r.json() == {"label": "fast-1-1", "score": 3.0, "size": 4}
    r = c.post(url, json={"k": 9})
    assert r.status_code == 422
    assert r.json()["features"] == ["Missing data for required field."] and "k" in r.json()
    assert c.get("/v2/models/typed-basic/").json()["description"] == "Classifies things, for tests."


def test_typed_model_output_breaking_its_type_is_500(make_client):
    r = make_client("typed_basic:Broken").post("/v2/models/typed-basic/predict/")
    assert r.status_code == 500 and "score" in r.json()["message"]


def test_async_predict_runs(make_client):
    r = make_client("typed_basic:Async").post("/v2/models/typed-basic/predict/?x=5")
    assert r.json() == {"status": "OK", "predictions": {"x": 5}}


def test_text_for_a_file_argument_is_refused(make_client):
    r = make_client("typed_basic:Classifier").post(
        "/v2/models/typed-basic/predict/", data={"features": "1", "upload": "/etc/passwd"}
    )
    assert r.status_code == 422 and r.json() == {"upload": ["Must be a file upload (multipart/form-data)."]}


def test_v1_model_on_v2_routes(make_client):
    c = make_client("v1_seed", pass_unresolved_urls=True)  # a.example: the model's to resolve
    url = "/v2/models/v1-seed/predict/"
    r = c.post(url, files=[("data", ("a.txt", b"abc")), ("data", ("b.txt", b"abcdef"))], data={"scale": "1"})
    assert r.json() == {
        "status": "OK",
        "predictions": [{"size": 3, "kwargs": {"scale": "1"}}, {"size": 6, "kwargs": {"scale": "1"}}],
    }
    r = c.post(url, data={"url": ["http://a.example/1"]})
    assert r.json()["predictions"] == {"url": "http://a.example/1", "kwargs": {"scale": "2"}}
    for kwargs in ({}, {"files": {"data": ("a", b"x")}, "data": {"url": "http://a"}}):
        r = c.post(url, **kwargs)
        assert r.status_code == 400 and "either 'url' or 'data'" in r.json()["message"]


def test_v1_predict_data_gets_raw_bytes(make_client):
    r = make_client("v1_data_only").post("/v2/models/v1-data-only/predict/", files={"data": ("a", b"12345")})
    assert r.json()["predictions"] == {"length": 5, "type": "bytes"}


def test_uploads_reach_the_model_and_are_deleted(make_client, settings):
    c = make_client("v1_seed")
    r = c.post("/v2/models/v1-seed/predict/", files={"data": ("../../etc/passwd", b"secret")})
    assert r.status_code == 200
    assert spool_files(settings.upload_dir) == []


def test_uploads_are_deleted_when_the_model_fails(make_client, settings):
    c = make_client("typed_basic:Broken")
    r = c.post("/v2/models/typed-basic/predict/", files={"junk": ("x.bin", b"123")})
    assert r.status_code == 500
    assert spool_files(settings.upload_dir) == []


def test_body_over_the_cap_is_413(make_client):
    c = make_client("v1_seed", client_max_size=1000)
    r = c.post("/v2/models/v1-seed/predict/", files={"data": ("a.bin", b"x" * 5000)})
    assert r.status_code == 413 and "1000" in r.json()["message"]


def test_nan_output_is_a_clear_500(make_client, tmp_path):
    from modelaas import Model
    from modelaas.model.adapters import TypedAdapter

    class NaN(Model):
        def predict(self) -> dict:
            return {"x": float("nan")}

    r = make_client(TypedAdapter("nan", NaN())).post("/v2/models/nan/predict/")
    assert r.status_code == 500
    assert r.json()["message"].startswith("Model 'nan' failed in predict: the answer cannot be sent as JSON")


def test_error_bodies_are_json_everywhere(make_client):
    c = make_client("v2_basic")
    for r in (c.post("/v2/models/v2-basic/predict/", content=b"{", headers={"content-type": "application/json"}),):
        assert r.status_code == 400 and json.loads(r.text)["message"]
    assert (
        os.path.basename(__file__)
        not in c.post("/v2/models/v2-basic/predict/", content=b"{", headers={"content-type": "application/json"}).text
    )


def test_uploads_left_by_dead_processes_are_swept_at_start(make_client, settings):
    import socket
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    stale = settings.upload_dir / f"{host}-{dead.pid}" / "req-x"
    stale.mkdir(parents=True)
    (stale / "leftover.bin").write_bytes(b"x")
    other_host = settings.upload_dir / "elsewhere-1" / "f"
    other_host.mkdir(parents=True)
    make_client("v2_basic")
    assert not stale.exists() and other_host.exists()


@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"0", "a number"), (b"[]", "an array"), (b'"x"', "a string"), (b"null", "null"), (b"true", "true")],
)
@pytest.mark.parametrize(
    ("target", "path"),
    [("v2_basic", "/v2/models/v2-basic/predict/"), ("trainer", "/v2/models/trainer/train/")],
    ids=["predict", "train"],
)
def test_a_json_body_that_is_not_an_object_is_400(make_client, target, path, body, kind):
    c = make_client(target)
    r = c.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["message"] == (
        f'A JSON request body must be an object of arguments ({{"name": value, ...}}), not {kind}.'
    )
    if path.endswith("/train/"):
        assert c.get(path).json() == []  # no job was queued
