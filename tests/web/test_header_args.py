"""v2 arguments declared with ``location: headers`` are read from request headers first (as DEEPaaS
does), with the query/form fallback kept, on predict and train; an explicit ``accept`` wins over
the ``Accept`` header."""

from __future__ import annotations

import pytest

from support import wait_for

PREDICT = "/v2/models/v2-headers/predict/"
TRAIN = "/v2/models/v2-headers/train/"


@pytest.fixture
def client(make_client):
    return make_client("v2_headers")


def test_predict_reads_a_header_argument(client):
    answer = client.post(PREDICT, headers={"X-Label": "cat"}, data={"n": "2"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == {"x-label": "cat", "n": 2}


def test_a_query_or_form_value_still_works_the_header_comes_first(client):
    assert client.post(PREDICT, params={"x-label": "dog"}).json()["predictions"]["x-label"] == "dog"
    both = client.post(PREDICT, data={"x-label": "form"}, headers={"X-Label": "header"})
    assert both.json()["predictions"]["x-label"] == "header"  # where DEEPaaS reads it
    assert client.post(PREDICT).json()["predictions"]["x-label"] == "none"


def _trained(client, **kwargs):
    answer = client.post(TRAIN, **kwargs)
    assert answer.status_code == 200, answer.text
    url = TRAIN + answer.json()["uuid"]
    record = wait_for(
        lambda: (r := client.get(url).json())["status"] in ("done", "error") and r, timeout=60, what="the training"
    )
    assert record["status"] == "done", record
    return record["result"]["output"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [("text/plain", "text/plain"), ("*/*", "application/json"), ("text/*;q=0.9, application/json;q=0.1", "text/plain")],
)
def test_train_negotiates_a_header_accept_argument(client, accept, expected):
    assert _trained(client, headers={"Accept": accept, "X-Label": "run-1"}) == {"accept": expected, "x-label": "run-1"}


def test_train_refuses_an_accept_it_cannot_answer(client):
    answer = client.post(TRAIN, headers={"Accept": "image/png"})
    assert answer.status_code == 406
    assert "application/json" in answer.json()["message"]


def test_an_explicit_accept_wins_over_the_accept_header(client):
    assert _trained(client, params={"accept": "text/plain"}, headers={"Accept": "application/json"})["accept"] == (
        "text/plain"
    )
