"""Error answers carry no stack traces, paths or secrets; every answer carries a request id."""

from __future__ import annotations

import logging
import re

import pytest

from modelaas.telemetry.logs import TextFormatter
from modelaas.web.errors import GENERIC_500, scrub

SECRET = "s3cr3t-value-of-an-env-var"
TOKEN = "leaky-bearer-token-0123456789"
HEX_ID = re.compile(r"[0-9a-f]{32}\Z")
URL = "/v2/models/leaky-errors/predict/"


@pytest.fixture
def leaky(make_client, monkeypatch):
    monkeypatch.setenv("LEAKY_SECRET", SECRET)
    return make_client("leaky_errors:LeakyErrors", model_name="leaky-errors")


def assert_clean(text: str) -> None:
    for needle in ("Traceback", 'File "', "/work/", "/srv/", "/tmp/", "/home/", SECRET, TOKEN):
        assert needle not in text, f"{needle!r} leaked: {text}"


def test_absolute_paths_become_base_names(leaky):
    r = leaky.post(URL, data={"what": "path"})
    assert r.status_code == 500
    message = r.json()["message"]
    assert_clean(r.text)
    assert "no checkpoint at leaky_errors.py nor at ckpt-7.pt" in message


def test_environment_values_are_redacted(leaky):
    r = leaky.post(URL, data={"what": "env"})
    assert r.status_code == 500
    assert_clean(r.text)
    assert "cannot log in with key <redacted>!" in r.json()["message"]


@pytest.mark.parametrize("how", ["form", "query", "json"])
def test_redaction_tells_no_client_whether_its_text_is_an_environment_value(leaky, how):
    """Finding: a model repeating the client's text redacted it when it was a server
    environment value: an oracle for guessing the environment."""

    def echo(text: str) -> str:
        if how == "form":
            r = leaky.post(URL, data={"what": "echo", "text": text})
        elif how == "query":
            r = leaky.post(URL, params={"what": "echo", "text": text})
        else:
            r = leaky.post(URL, json={"what": "echo", "text": text})
        assert r.status_code == 500
        return str(r.json()["message"])

    assert echo(SECRET) == f"Model 'leaky-errors' failed in predict: bad header: {SECRET}"
    assert echo("not-a-secret-at-all") == "Model 'leaky-errors' failed in predict: bad header: not-a-secret-at-all"
    assert echo(f"x{SECRET}y") == f"Model 'leaky-errors' failed in predict: bad header: x{SECRET}y"
    home = leaky.post(URL, data={"what": "env"})  # what the client did not send stays redacted
    assert home.json()["message"].endswith("cannot log in with key <redacted>!")


def test_tracebacks_in_messages_are_cut(leaky):
    r = leaky.post(URL, data={"what": "traceback"})
    assert r.status_code == 500
    assert_clean(r.text)
    assert r.json()["message"].endswith("lookup failed: (traceback in the server log)")


def test_model_errors_with_their_own_status_are_scrubbed_too(leaky):
    r = leaky.post(URL, data={"what": "status"})
    assert r.status_code == 400
    assert r.json()["message"] == "refused: config in models"


def test_configured_tokens_are_redacted_even_when_not_in_the_environment(make_client):
    c = make_client("leaky_errors:LeakyErrors", model_name="leaky-errors", tokens=f"predict {TOKEN}")
    data = {"what": "echo", "text": f"Bearer {TOKEN}"}  # the model repeats what it was given
    r = c.post(URL, data=data, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 500
    assert r.json()["message"] == "Model 'leaky-errors' failed in predict: bad header: Bearer <redacted>"


def test_unexpected_errors_answer_a_generic_message_and_log_with_the_request_id(make_client, caplog):
    c = make_client("v2_basic")
    st = c.app.state.modelaas  # type: ignore[attr-defined]

    async def broken(*args, **kwargs):
        raise KeyError(f"/etc/modelaas/{SECRET}")

    st.runtime.predict = broken
    caplog.set_level(logging.ERROR)
    r = c.post("/v2/models/v2-basic/predict/", data={"count": "1"}, headers={"X-Request-ID": "req-42"})
    assert r.status_code == 500
    assert r.json() == {"message": GENERIC_500, "request_id": "req-42"}
    assert r.headers["x-request-id"] == "req-42"
    ids = {getattr(rec, "request_id", None) for rec in caplog.records if rec.levelno >= logging.ERROR}
    assert ids == {"req-42"} and "KeyError" in caplog.text and "Traceback" in caplog.text


def test_model_tracebacks_are_logged_with_the_request_id(leaky, caplog):
    caplog.set_level(logging.ERROR)
    r = leaky.post(URL, data={"what": "env"}, headers={"X-Request-ID": "abc.123"})
    assert r.status_code == 500 and r.json()["request_id"] == "abc.123"
    (record,) = [rec for rec in caplog.records if rec.name == "modelaas.runtime"]
    assert record.request_id == "abc.123" and record.exc_info is not None
    assert TextFormatter().format(record).split(": ", 1)[1].startswith("[request abc.123] ")


# ------------------------------------------------------------------ request ids
def test_every_answer_carries_a_request_id(make_client):
    c = make_client("v2_basic")
    answers = [
        c.get("/healthz"),
        c.post("/v2/models/v2-basic/predict/", data={"count": "1"}),
        c.post("/v2/models/v2-basic/predict/"),  # 422
        c.get("/v2/models/nope/"),  # 404 of ours
        c.get("/no/such/route"),  # 404 of the router
        c.delete("/healthz"),  # 405
        c.get("/v2/models/v2-basic", follow_redirects=False),  # 308
    ]
    ids = [r.headers.get("x-request-id") for r in answers]
    assert all(i and HEX_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    for r in answers[3:6]:
        assert r.json()["request_id"] == r.headers["x-request-id"]


def test_validation_errors_keep_the_deepaas_body(make_client):
    c = make_client("v2_basic")
    r = c.post("/v2/models/v2-basic/predict/", headers={"X-Request-ID": "mine"})
    assert r.status_code == 422
    assert r.json() == {"count": ["Missing data for required field."]}
    assert r.headers["x-request-id"] == "mine"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("Root=1-67891233-abcdef012345678912345678", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("has space", False),
        ("-starts-with-dash", False),
        ("new\\nline", False),
        ("ünïcode", False),
        ("", False),
    ],
)
def test_client_request_ids_are_kept_only_when_sane(make_client, given, kept):
    c = make_client("v2_basic")
    r = c.get("/healthz", headers={"X-Request-ID": given.encode("utf-8")})
    if kept:
        assert r.headers["x-request-id"] == given
    else:
        assert HEX_ID.match(r.headers["x-request-id"])


# ------------------------------------------------------------------ the scrubber itself
@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("open /a/b/c.txt failed", "open c.txt failed"),
        ("'/etc/passwd'", "'passwd'"),
        ("dir /srv/models/ is empty", "dir models is empty"),
        ("see https://example.org/a/b?x=1 for help", "see https://example.org/a/b?x=1 for help"),
        ("read file:///etc/shadow", "read shadow"),
        (r"C:\Users\me\model.pt missing", "model.pt missing"),
        ("relative/path/x.pt and 3/4 and km/h stay", "relative/path/x.pt and 3/4 and km/h stay"),
        ("at /a/b.py:12, in f", "at b.py:12, in f"),
    ],
)
def test_scrub(message, expected):
    assert scrub(message) == expected


def test_scrub_keeps_short_values_and_public_names(monkeypatch):
    monkeypatch.setenv("SHORT_ONE", "true")
    monkeypatch.setenv("MODEL_NAME_VAR", "demo-app")
    assert scrub("flag true for demo-app", public=["demo-app"]) == "flag true for demo-app"
    assert scrub("flag true for demo-app") == "flag true for <redacted>"
