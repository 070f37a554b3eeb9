"""Smaller habits of real models (corpus package compat-small).

compat-image-wildcard offers ``accept`` choices ``application/json`` and ``image/*``, and
answers a PNG for any image type. Equal under both servers: ``Accept: application/json``
answers 200 with the same JSON. Where modelaas departs on purpose (docs/guide.md, "What
modelaas does differently": DEEPaaS compares the Accept header with the choices as plain
strings, where modelaas negotiates):

* ``Accept: image/png`` (a type inside the offered ``image/*``): DEEPaaS answers 422; modelaas
  answers 200 with the image and ``Content-Type: image/png``;
* ``Accept: image/*``: both answer 200 with the same image; DEEPaaS with the wildcard itself
  as its Content-Type, modelaas with a concrete image type.

compat-field-docs has a ``format: password`` field and an ``enum`` in a field's metadata
without a ``OneOf`` validator. Equal under both servers: a value outside the enum is
accepted (200, the same JSON answer); in ``/swagger.json`` both fields are described with
the same type, ``format`` and ``enum`` (as Swagger 2.0 parameters or OpenAPI 3 schemas).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support_deepaas import Server, ask_both, predict_url

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

IMAGE = "compat-image-wildcard"
DOCS = "compat-field-docs"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _ask(servers: dict[str, Server], accept: str) -> tuple[httpx.Response, httpx.Response]:
    headers = {"Accept": accept}
    return ask_both(servers, lambda base: httpx.post(predict_url(base, IMAGE), headers=headers, timeout=60))


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip()


def test_json_from_a_model_offering_an_image_wildcard(serve):
    theirs, ours = _ask(serve(IMAGE), "application/json")
    assert theirs.status_code == 200, theirs.text
    assert ours.status_code == 200, ours.text
    assert ours.json() == theirs.json()
    assert theirs.json()["predictions"]["side"] == 2


def test_an_image_type_inside_the_offered_wildcard(serve):
    servers = serve(IMAGE)
    image = _ask(servers, "image/*")[0].content  # the image, as DEEPaaS sends it
    assert image.startswith(PNG_SIGNATURE)
    theirs, ours = _ask(servers, "image/png")
    assert theirs.status_code == 422
    assert theirs.json() == {"accept": ["Must be one of: application/json, image/*."]}
    assert ours.status_code == 200, ours.text
    assert _media_type(ours) == "image/png"
    assert ours.content == image


def test_the_wildcard_itself_is_answered_with_a_concrete_type(serve):
    theirs, ours = _ask(serve(IMAGE), "image/*")
    assert (theirs.status_code, _media_type(theirs)) == (200, "image/*")
    assert ours.status_code == 200, ours.text
    assert ours.content == theirs.content
    media_type = _media_type(ours)
    assert media_type.startswith("image/") and "*" not in media_type, media_type


def test_a_value_outside_a_documentation_only_enum_is_accepted(serve):
    data = {"shape": "triangle", "api-key": "s3cret"}
    theirs, ours = ask_both(serve(DOCS), lambda base: httpx.post(predict_url(base, DOCS), data=data, timeout=60))
    expected = {"status": "OK", "predictions": {"api_key_length": 6, "shape": "triangle", "documented": False}}
    assert (theirs.status_code, theirs.json()) == (200, expected)
    assert ours.status_code == 200, ours.text
    assert ours.json() == expected


def _described_fields(base: str) -> dict[str, dict[str, Any]]:
    """Type, format and enum of each predict argument of compat-field-docs in ``/swagger.json``.

    Read from Swagger 2.0 ``parameters`` (DEEPaaS) or from OpenAPI 3 parameter schemas and
    request-body properties, whichever the document has.
    """
    operation = httpx.get(base + "/swagger.json", timeout=30).json()["paths"][f"/v2/models/{DOCS}/predict/"]["post"]
    schemas = {p["name"]: p.get("schema", p) for p in operation.get("parameters", [])}
    for content in operation.get("requestBody", {}).get("content", {}).values():
        schemas.update(content.get("schema", {}).get("properties", {}))
    keys = ("type", "format", "enum")
    return {name: {k: schema[k] for k in keys if k in schema} for name, schema in schemas.items()}


def test_password_format_and_enum_are_described_alike(serve):
    servers = serve(DOCS)
    theirs = _described_fields(servers["deepaas"].require())
    assert theirs["api-key"] == {"type": "string", "format": "password"}
    assert theirs["shape"] == {"type": "string", "enum": ["circle", "square"]}
    ours = _described_fields(servers["modelaas"].require())
    assert {name: ours.get(name) for name in theirs} == theirs
