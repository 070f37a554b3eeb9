"""Offered media ranges (``image/*``): concrete requests are served, wildcards never sent as types;
in-memory files with a name are attachments with that name."""

from __future__ import annotations

import pytest

URL = "/v2/models/v2-wildcard/predict/"


@pytest.fixture
def client(make_client):
    return make_client("v2_wildcard")


@pytest.mark.parametrize("accept", ["image/png", "image/*", "image/png;q=0.9, application/json;q=0.1"])
def test_a_concrete_type_an_offered_range_covers_is_served(client, accept):
    answer = client.post(URL, headers={"Accept": accept})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"  # the bytes' own type, never image/*
    assert answer.content.startswith(b"\x89PNG")


def test_unknown_bytes_under_a_range_are_octet_stream(client):
    answer = client.post(URL, headers={"Accept": "audio/x-weird"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/octet-stream"


def test_a_type_no_offer_covers_is_still_406(client):
    answer = client.post(URL, headers={"Accept": "video/mp4"})
    assert answer.status_code == 406
    assert "image/*" in answer.json()["message"]


def test_a_named_in_memory_file_is_an_attachment_with_its_name(client):
    answer = client.post(URL, headers={"Accept": "application/pdf"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"] == "attachment; filename*=utf-8''report%201.pdf"
    assert answer.content == b"%PDF-1.4 report"


def test_json_is_still_the_default(client):
    answer = client.post(URL)
    assert answer.status_code == 200
    assert answer.json() == {"status": "OK", "predictions": {"accept": "application/json"}}
