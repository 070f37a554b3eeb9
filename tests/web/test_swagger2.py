"""``/swagger.json`` is a valid Swagger 2.0 document in the shapes DEEPaaS tooling reads.

Every fixture model (tests/fixtures/models) and every example gets a valid document; the
predict and train operations carry DEEPaaS's parameter shapes (``in: query|formData|header``,
``type: file``, ``collectionFormat: multi``, ``accept`` as a header with ``*/*``), ``consumes``
and ``produces``; a declared output schema is ``definitions/ModelPredictionResponse``; field
metadata (``format``, a documentation ``enum``) reaches both documents.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from marshmallow import Schema, fields, validate
from openapi_spec_validator import OpenAPIV2SpecValidator
from openapi_spec_validator import validate as validate_spec
from starlette.testclient import TestClient

from modelaas.errors import ModelLoadError
from modelaas.model.adapters import ModelAdapter, V2Adapter
from modelaas.model.loader import ModelRef, load
from modelaas.runtime import Runtime
from modelaas.settings import Settings
from modelaas.web.app import create_app
from support import load_fixture

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "fixtures" / "models"
EXAMPLES = {  # folder -> (name, entry-point target, interface)
    "v2-demo-app": ("demo-app", "demo_app.api", "v2"),
    "v1-seed": ("seed-model", "seed_model.api", "v1"),
    "typed-classifier": ("typed-classifier", "typed_classifier.model:Classifier", "typed"),
}


def fixture_targets() -> list[str]:
    """``module`` or ``module:Class`` of every model in tests/fixtures/models that loads."""
    targets = []
    for path in sorted(MODELS.glob("*.py")):
        try:
            module = importlib.import_module(path.stem)
        except Exception:  # broken_import, on purpose
            continue
        classes = [
            f"{path.stem}:{name}"
            for name, obj in vars(module).items()
            if inspect.isclass(obj) and obj.__module__ == module.__name__
        ]
        for target in [path.stem, *classes]:
            try:
                load_fixture(target)
            except ModelLoadError:  # not a model, or a model that fails to load on purpose
                continue
            targets.append(target)
    return targets


@contextlib.contextmanager
def serve(tmp_path: Path, *adapters: ModelAdapter, **overrides: Any) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", warm=False, **overrides)
    with TestClient(create_app(settings, runtime=Runtime(settings, list(adapters)))) as client:
        yield client


def swagger(client: TestClient, base: str = "") -> dict[str, Any]:
    response = client.get(f"{base}/swagger.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    assert doc["swagger"] == "2.0"
    validate_spec(doc, cls=OpenAPIV2SpecValidator)
    return doc


def predict_op(doc: dict[str, Any], model: str, base: str = "") -> dict[str, Any]:
    op: dict[str, Any] = doc["paths"][f"{base}/v2/models/{model}/predict/"]["post"]
    return op


def params_by_name(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in op["parameters"]}


# ----------------------------------------------------------------- valid for every model


def test_every_fixture_model_gets_a_valid_swagger_2_document(tmp_path: Path) -> None:
    targets = fixture_targets()
    assert len(targets) >= 25, targets  # the scan found the fixture models
    checked = []
    for target in targets:
        with serve(tmp_path / target.replace(":", "-"), load_fixture(target)) as client:
            doc = swagger(client)
        checked.append(target)
        assert any(p.endswith(("/predict/", "/train/")) for p in doc["paths"]), target
    assert checked == targets


@pytest.mark.parametrize("folder", sorted(EXAMPLES))
def test_every_example_gets_a_valid_swagger_2_document(
    folder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, target, interface = EXAMPLES[folder]
    monkeypatch.syspath_prepend(str(ROOT / "examples" / folder))
    with serve(tmp_path, load(ModelRef(name, target, interface, "test"))) as client:
        doc = swagger(client)
    assert f"/v2/models/{name}/predict/" in doc["paths"]


@pytest.mark.parametrize(
    "overrides",
    [{}, {"base_path": "/foo/bar"}, {"tokens": "admin admin-token-0123456789"}, {"train_endpoint": False}],
    ids=["default", "base-path", "tokens", "notrain"],
)
def test_many_models_in_one_document(tmp_path: Path, overrides: dict[str, Any]) -> None:
    models = [
        load_fixture(t) for t in ("v2_schema", "v2_basic", "v1_seed", "typed_basic:Classifier", "trainer:Trainer")
    ]
    base = overrides.get("base_path", "")
    with serve(tmp_path, *models, **overrides) as client:
        doc = swagger(client, base)
        openapi = client.get(f"{base}/openapi.json").json()
    methods = {"get", "put", "post", "delete"}
    operations = {(p, m) for p, item in doc["paths"].items() for m in item if m in methods}
    assert operations == {(p, m) for p, item in openapi["paths"].items() for m in item if m in methods}
    assert all(p.startswith(base + "/") for p in doc["paths"])
    # the first predicting model's output is the one one-model clients read; the others are named apart
    assert predict_op(doc, "v2-schema", base)["responses"]["200"]["schema"] == {
        "$ref": "#/definitions/ModelPredictionResponse"
    }
    assert predict_op(doc, "typed-basic", base)["responses"]["200"]["schema"] == {
        "$ref": "#/definitions/ModelPredictionResponse.typed-basic"
    }
    assert predict_op(doc, "v2-basic", base)["responses"]["200"]["schema"] == {"$ref": "#/definitions/Predictions"}
    if "tokens" in overrides:
        assert set(doc["securityDefinitions"]) == {"bearer", "accessTokenQuery"}
        assert predict_op(doc, "v2-basic", base)["security"] == [{"bearer": []}]
        assert "security" not in doc["paths"]["/"]["get"]
    else:
        assert "securityDefinitions" not in doc


# ------------------------------------------------------------------- DEEPaaS's shapes


def test_demo_app_predict_is_described_as_deepaas_describes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "v2-demo-app"))
    with serve(tmp_path, load(ModelRef("demo-app", "demo_app.api", "v2", "test"))) as client:
        doc = swagger(client)
    op = predict_op(doc, "demo-app")
    names = [p["name"] for p in op["parameters"]]
    assert names[-1] == "accept"  # last: the DEEPaaS web UI expects it there
    params = params_by_name(op)
    assert {n: p["in"] for n, p in params.items()} == {
        **{n: "query" for n in names[:8]},
        "demo-image": "formData",
        "demo-audio": "formData",
        "demo-video": "formData",
        "accept": "header",
    }
    assert params["demo-int"] == {
        "in": "query",
        "name": "demo-int",
        "required": True,
        "type": "integer",
        "description": "A required integer.",
    }
    assert params["demo-int-range"]["minimum"] == 1 and params["demo-int-range"]["maximum"] == 100
    assert params["demo-str-choice"]["enum"] == ["choice1", "choice2", "choice3"]
    assert params["demo-str-choice"]["default"] == "choice2"
    assert params["demo-list-of-floats"]["type"] == "array"
    assert params["demo-list-of-floats"]["collectionFormat"] == "multi"
    assert params["demo-list-of-floats"]["items"] == {"type": "number"}
    assert params["demo-list-of-floats"]["default"] == [0.1, 0.2, 0.3]
    assert params["demo-image"] == {
        "in": "formData",
        "name": "demo-image",
        "required": True,
        "type": "file",
        "description": "An image file.",
    }
    assert params["accept"]["enum"] == ["application/json", "image/png", "*/*"]
    assert params["accept"]["default"] == "application/json"
    assert op["produces"] == ["application/json", "image/png", "*/*"]
    assert op["consumes"] == ["multipart/form-data"]
    output = doc["definitions"]["ModelPredictionResponse"]
    assert set(output["properties"]) == {"args", "media", "labels", "probabilities"}
    assert output["properties"]["labels"]["items"]["enum"] == ["cat", "dog", "bird", "fish"]


def test_field_kinds_become_parameter_types(tmp_path: Path) -> None:
    with serve(tmp_path, load_fixture("v2_basic")) as client:
        op = predict_op(swagger(client), "v2-basic")
    params = params_by_name(op)
    types_ = {n: (p["in"], p["type"]) for n, p in params.items()}
    assert types_ == {
        "text": ("query", "string"),
        "count": ("query", "integer"),
        "level": ("query", "integer"),
        "color": ("query", "string"),
        "ratio": ("query", "number"),
        "flag": ("query", "boolean"),
        "values": ("query", "array"),
        "options": ("query", "string"),  # Swagger 2.0 has no object parameter: JSON text
        "renamed-arg": ("query", "string"),  # the data_key clients send
    }
    assert params["options"]["default"] == "{}"
    assert params["options"]["description"] == "A JSON object, as text."
    assert params["flag"]["default"] is False
    assert "accept" not in params and op["produces"] == ["application/json"]
    # no file: a JSON body and form fields work too, as the description says
    assert op["consumes"] == ["application/json", "multipart/form-data", "application/x-www-form-urlencoded"]
    assert "JSON object body" in op["description"]


def test_accept_choices_are_produces_and_a_header(tmp_path: Path) -> None:
    with serve(tmp_path, load_fixture("v2_accept")) as client:
        op = predict_op(swagger(client), "v2-accept")
    choices = ["application/json", "image/png", "text/plain", "application/pdf"]
    assert op["produces"] == [*choices, "*/*"]
    assert op["parameters"] == [
        {
            "in": "header",
            "name": "accept",
            "required": False,
            "type": "string",
            "enum": [*choices, "*/*"],
            "default": "application/json",
            "description": op["parameters"][0]["description"],
        }
    ]
    assert "consumes" not in op  # no argument to send


def test_train_arguments_and_answers(tmp_path: Path) -> None:
    with serve(tmp_path, load_fixture("trainer:Trainer")) as client:
        doc = swagger(client)
    op = doc["paths"]["/v2/models/trainer/train/"]["post"]
    params = params_by_name(op)
    assert params["epochs"] == {
        "in": "query",
        "name": "epochs",
        "required": False,
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "default": 3,
    }
    assert params["data"]["in"] == "formData" and params["data"]["type"] == "file"
    assert op["consumes"] == ["multipart/form-data"]
    assert op["responses"]["200"]["schema"] == {"$ref": "#/definitions/JobRecord"}
    job = doc["paths"]["/v2/models/trainer/train/{job}"]
    assert job["parameters"] == [
        {
            "in": "path",
            "name": "job",
            "required": True,
            "type": "string",
            "description": job["parameters"][0]["description"],
        }
    ]
    assert set(job) == {"parameters", "get", "delete"}


def test_v1_model_arguments(tmp_path: Path) -> None:
    with serve(tmp_path, load_fixture("v1_seed")) as client:
        doc = swagger(client)
    for path in ("/v2/models/v1-seed/predict/", "/v1/models/v1-seed/predict"):
        params = params_by_name(doc["paths"][path]["post"])
        assert params["data"]["type"] == "file" and params["data"]["in"] == "formData"
        assert params["url"]["type"] == "array" and params["url"]["items"] == {"type": "string"}
        assert params["scale"] == {
            "in": "query",
            "name": "scale",
            "required": False,
            "type": "string",
            "default": "2",
            "description": "multiplier",
        }
    train = params_by_name(doc["paths"]["/v1/models/v1-seed/train"]["put"])
    assert train["epochs"]["required"] is True


# ---------------------------------------------------- metadata: format, enum, location


class Output(Schema):
    label = fields.Str(required=True, metadata={"description": "The label."})
    secret = fields.Str(metadata={"format": "password"})


def metadata_module() -> types.ModuleType:
    mod = types.ModuleType("metadata_fixture")

    def get_predict_args() -> dict[str, Any]:
        return {
            "token": fields.Str(load_default="", metadata={"format": "password", "description": "A token."}),
            "mode": fields.Str(load_default="a", metadata={"enum": ["a", "b"], "description": "As documented."}),
            "trace": fields.Str(load_default="none", metadata={"location": "headers"}),
            "note": fields.Str(load_default="", metadata={"location": "form"}),
            "keys": fields.List(fields.Str(), load_default=[], metadata={"format": "password"}),
            "accept": fields.Str(validate=validate.OneOf(["application/json"]), metadata={"location": "headers"}),
        }

    mod.get_predict_args = get_predict_args  # type: ignore[attr-defined]
    mod.get_train_args = lambda: {"pw": fields.Str(metadata={"format": "password"})}  # type: ignore[attr-defined]
    mod.predict = lambda **kwargs: {"label": f"{kwargs['mode']}/{kwargs['trace']}/{kwargs['note']}"}  # type: ignore[attr-defined]
    mod.train = lambda **kwargs: kwargs  # type: ignore[attr-defined]
    mod.schema = Output  # type: ignore[attr-defined]
    return mod


def test_metadata_format_and_enum_reach_both_documents(tmp_path: Path) -> None:
    with serve(tmp_path, V2Adapter("meta", metadata_module())) as client:
        doc = swagger(client)
        openapi = client.get("/openapi.json").json()
    params = params_by_name(predict_op(doc, "meta"))
    assert params["token"]["format"] == "password"
    assert params["keys"]["items"] == {"type": "string", "format": "password"}
    assert params["mode"]["enum"] == ["a", "b"]
    train = params_by_name(doc["paths"]["/v2/models/meta/train/"]["post"])
    assert train["pw"]["format"] == "password"
    body = openapi["paths"]["/v2/models/meta/predict/"]["post"]["requestBody"]["content"]
    for content in body.values():
        props = content["schema"]["properties"]
        assert props["token"]["format"] == "password"
        assert props["keys"]["items"]["format"] == "password"
        # documentation only (no OneOf): usual values in OpenAPI 3.1, an enum in Swagger 2.0 as DEEPaaS has it
        assert props["mode"]["examples"] == ["a", "b"] and "enum" not in props["mode"]
    train_body = openapi["paths"]["/v2/models/meta/train/"]["post"]["requestBody"]["content"]
    assert all(c["schema"]["properties"]["pw"]["format"] == "password" for c in train_body.values())
    # a Schema subclass is ModelPredictionResponse all the same
    assert doc["definitions"]["ModelPredictionResponse"]["properties"]["label"] == {
        "type": "string",
        "description": "The label.",
    }


def test_header_and_form_locations_are_documented_and_honoured(tmp_path: Path) -> None:
    with serve(tmp_path, V2Adapter("meta", metadata_module())) as client:
        params = params_by_name(predict_op(swagger(client), "meta"))
        assert params["trace"]["in"] == "header"
        assert params["note"]["in"] == "formData"
        r = client.post("/v2/models/meta/predict/", headers={"trace": "from-a-header"}, data={"note": "n"})
        assert r.status_code == 200, r.text
        assert r.json() == {"label": "a/from-a-header/n"}
        # the header comes first; without it, the argument is read where any other one is
        r = client.post("/v2/models/meta/predict/?trace=q", headers={"Trace": "h"})
        assert r.json() == {"label": "a/h/"}
        assert client.post("/v2/models/meta/predict/?trace=q").json() == {"label": "a/q/"}


def test_swagger_document_is_built_once(tmp_path: Path) -> None:
    with serve(tmp_path, load_fixture("v2_basic")) as client:
        first = client.get("/swagger.json").json()
        st = client.app.state.modelaas  # type: ignore[attr-defined]
        assert st.swagger2 == first
        st.swagger2["info"]["title"] = "cached"
        assert client.get("/swagger.json").json()["info"]["title"] == "cached"
