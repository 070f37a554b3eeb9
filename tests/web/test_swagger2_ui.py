"""A client that reads ``/swagger.json`` the way the DEEPaaS web UI does can build its form and predict.

The DEEPaaS web UI (a Gradio app) takes the first path ending in ``predict/``, builds one
input per entry of its ``post.parameters`` (``name``, ``in``, ``type`` defaulting to string,
``enum``, ``default``, ``minimum``/``maximum``, ``format``, ``description``), leaves out
``accept``, makes one tab per media type of ``produces`` but ``*/*``, and reads the output
widgets from ``definitions.ModelPredictionResponse.properties`` when the answer is JSON. Its
submission puts every non-file value in the query string (lists as repeated keys), files as
multipart parts, the tab's media type in both the Accept header and an ``accept`` argument,
and posts to the path without its trailing slash. Here the same reading and submission are
written for this suite, for the demo app and the fixture models; ``scripts/compat-ui`` runs
the real UI.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from test_swagger2 import ROOT, fixture_targets

from modelaas.model.adapters import ModelAdapter
from modelaas.model.loader import ModelRef, load
from modelaas.runtime import Runtime
from modelaas.settings import Settings
from modelaas.web.app import create_app
from support import load_fixture

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)
INPUT_TYPES = {"integer", "number", "boolean", "string", "array", "file"}
OUTPUT_TYPES = {"string", "boolean", "integer", "number", "array", "object"}


@dataclass
class Input:
    name: str
    type: str
    widget: str
    spec: dict[str, Any]


@dataclass
class Form:
    """What the UI builds: the predict URL path, its inputs, one tab per media type, JSON output widgets."""

    path: str
    inputs: list[Input]
    tabs: list[str]
    outputs: dict[str, str] | None = None
    """Output name -> widget, when the model declares its JSON answer; else the raw JSON is shown."""
    skipped: list[str] = field(default_factory=list)


def widget(spec: dict[str, Any]) -> str:
    """The kind of input the UI shows for a parameter; an unknown type stops it, so fails here."""
    kind = spec["type"]
    if "enum" in spec:
        return "dropdown"
    if kind == "integer" and "minimum" in spec and "maximum" in spec:
        return "slider"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "checkbox"
    if kind == "string":
        return "password" if spec.get("format") == "password" else "text"
    if kind == "array":
        return "text"
    if kind == "file":
        return "file"
    raise AssertionError(f"the DEEPaaS web UI cannot show a parameter of type {kind!r}: {spec}")


def read_form(doc: dict[str, Any]) -> Form:
    """Read the document with exactly the keys the UI reads (a missing one is a KeyError, as there)."""
    path = next(p for p in doc["paths"] if p.endswith("predict/"))  # the first one, as the UI takes
    operation = doc["paths"][path]["post"]
    inputs = []
    for spec in operation["parameters"]:
        spec = {**spec, "type": spec.get("type", "string")}
        assert spec["type"] in INPUT_TYPES, spec
        if spec["name"] != "accept":
            inputs.append(Input(spec["name"], spec["type"], widget(spec), spec))
    tabs = [media for media in operation["produces"] if media != "*/*"]
    assert tabs, operation["produces"]
    form = Form(path, inputs, tabs)
    if "application/json" in tabs:
        try:
            properties = doc["definitions"]["ModelPredictionResponse"]["properties"]
        except KeyError:  # the UI falls back to showing the raw JSON
            return form
        form.outputs = {}
        for name, prop in properties.items():
            assert "type" not in prop or prop["type"] in OUTPUT_TYPES, (name, prop)
            form.outputs[name] = prop.get("type", "text")  # untyped: shown as text
    return form


def fill(form: Form, given: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The values a user leaves or types: the defaults, ``given``, and a value for each required input."""
    query: dict[str, Any] = {}
    files: dict[str, Any] = {}
    for item in form.inputs:
        spec = item.spec
        value = given.get(item.name, spec.get("default"))
        if value is None and spec["required"] and item.type != "file":
            value = _sample(spec)
        if item.type == "file":
            if item.name in given or spec["required"]:
                upload = tmp_path / f"{item.name}.png"
                upload.write_bytes(PNG)
                files[item.name] = (upload.name, upload.read_bytes(), "image/png")
            continue
        if value is None or (not value and not isinstance(value, bool)):
            continue  # the UI sends nothing for an empty input
        query[item.name] = value
    return query, files


def _sample(spec: dict[str, Any]) -> Any:
    if "enum" in spec:
        return spec["enum"][0]
    kind = spec["type"]
    if kind == "array":
        return [_sample({**spec["items"], "required": True})]
    low = spec.get("minimum", 1)
    return {"integer": int(low), "number": float(low), "boolean": True}.get(kind, "some text")


def submit(client: TestClient, form: Form, media: str, query: dict[str, Any], files: dict[str, Any]) -> Any:
    """Post as the UI does: values in the query string, files as parts, the tab's type as Accept and accept."""
    url = form.path.rstrip("/")  # the UI joins the path without its trailing slash (308 to it)
    params: list[tuple[str, str]] = []
    for name, value in {**query, "accept": media}.items():
        values = value if isinstance(value, list) else [value]
        params += [(name, v if isinstance(v, str) else json.dumps(v)) for v in values]
    return client.post(url, params=params, files=files or None, headers={"Accept": media})


@contextlib.contextmanager
def serve(tmp_path: Path, adapter: ModelAdapter) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", warm=False)
    with TestClient(create_app(settings, runtime=Runtime(settings, [adapter]))) as client:
        yield client


def test_every_fixture_model_with_predict_gives_the_ui_a_form(tmp_path: Path) -> None:
    forms = 0
    for target in fixture_targets():
        with serve(tmp_path / target.replace(":", "-"), load_fixture(target)) as client:
            doc = client.get("/swagger.json").json()
        if not any(p.endswith("predict/") for p in doc["paths"]):
            continue  # a model that only trains: nothing for the UI to show
        form = read_form(doc)
        assert form.path.startswith("/v2/models/"), target
        forms += 1
    assert forms >= 20


def test_the_demo_app_form_and_a_prediction_through_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "v2-demo-app"))
    adapter = load(ModelRef("demo-app", "demo_app.api", "v2", "test"))
    with serve(tmp_path, adapter) as client:
        form = read_form(client.get("/swagger.json").json())
        assert form.path == "/v2/models/demo-app/predict/"
        assert [(i.name, i.widget) for i in form.inputs] == [
            ("demo-str", "text"),
            ("demo-str-choice", "dropdown"),
            ("demo-int", "number"),
            ("demo-int-range", "slider"),
            ("demo-float", "number"),
            ("demo-bool", "checkbox"),
            ("demo-dict", "text"),
            ("demo-list-of-floats", "text"),
            ("demo-image", "file"),
            ("demo-audio", "file"),
            ("demo-video", "file"),
        ]
        assert form.tabs == ["application/json", "image/png"]
        assert form.outputs == {"args": "object", "media": "array", "labels": "array", "probabilities": "array"}
        given = {"demo-str": "from the form", "demo-int": 7, "demo-bool": False, "demo-list-of-floats": [0.5, 2]}
        query, files = fill(form, given, tmp_path)
        r = submit(client, form, "application/json", query, files)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert set(answer) == set(form.outputs)  # the widgets' values are there
        assert answer["args"]["demo-str"] == "from the form"
        assert answer["args"]["demo-int"] == 7
        assert answer["args"]["demo-bool"] is False
        assert answer["args"]["demo-list-of-floats"] == [0.5, 2.0]
        assert answer["args"]["demo-str-choice"] == "choice2"  # the dropdown's default
        assert [m["size"] for m in answer["media"]] == [len(PNG)] * 3
        r = submit(client, form, "image/png", query, files)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content == PNG


# model target -> values a user would type where the defaults do not do
UI_CASES = {
    "v2_basic": {},
    "v2_schema": {},
    "v2_accept": {},
    "typed_basic:Classifier": {"features": [1.5, 2.5]},
    "v1_seed": {"data": True},
    "upload_echo:UploadEcho": {},
    "size_only:SizeOnly": {},
}


@pytest.mark.parametrize("target", sorted(UI_CASES))
def test_a_prediction_from_the_ui_form_reaches_the_model(tmp_path: Path, target: str) -> None:
    with serve(tmp_path, load_fixture(target)) as client:
        form = read_form(client.get("/swagger.json").json())
        query, files = fill(form, UI_CASES[target], tmp_path)
        for media in form.tabs:
            r = submit(client, form, media, query, files)
            assert r.status_code == 200, (media, r.text)
            assert r.headers["content-type"].split(";")[0] == media
            if media == "application/json" and form.outputs is not None:
                assert set(r.json()) <= set(form.outputs)
            elif media == "application/json":
                assert "predictions" in r.json()  # no declared output: the UI shows the raw predictions
