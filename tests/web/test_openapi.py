"""The OpenAPI document matches the routes and the answers; Swagger UI is served from bundled assets."""

from __future__ import annotations

import contextlib
import json
import os
import time
import types
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, Literal

import anyio
import pydantic
import pytest
from jsonschema import Draft202012Validator
from marshmallow import fields, validate
from openapi_spec_validator import OpenAPIV2SpecValidator, OpenAPIV31SpecValidator
from starlette.routing import Route
from starlette.testclient import TestClient

from modelaas.model.adapters import ModelAdapter, TypedAdapter, V1Adapter, V2Adapter
from modelaas.model.demo import DemoModel
from modelaas.model.interface import Input, Model
from modelaas.runtime import Runtime
from modelaas.settings import Settings
from modelaas.web.app import create_app

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


# ------------------------------------------------------------------ fixture models
class Score(pydantic.BaseModel):
    label: str
    score: float


class Prediction(pydantic.BaseModel):
    scores: list[Score]
    total: int


class TypedScorer(Model):
    """Scores a text (typed fixture with a pydantic answer)."""

    metadata = {"summary": "Typed fixture model."}

    def predict(
        self,
        text: str = Input(description="The text to score.", min_length=1),
        mode: Literal["fast", "exact"] = Input("fast", description="How hard to try."),
        top_k: int = Input(2, ge=1, le=10, description="How many scores."),
    ) -> Prediction:
        return Prediction(scores=[Score(label=f"{text}-{mode}", score=0.5)] * top_k, total=top_k)


def _other_prediction() -> type[pydantic.BaseModel]:
    class Score(pydantic.BaseModel):  # another model's "Score": its $defs name clashes with the one above
        value: int

    class OtherPrediction(pydantic.BaseModel):
        best: Score

    return OtherPrediction


OtherPrediction = _other_prediction()


class OtherTyped(Model):
    def predict(self, n: int = Input(1)) -> OtherPrediction:  # type: ignore[valid-type]
        return OtherPrediction.model_validate({"best": {"value": n}})


def v2_module() -> types.ModuleType:
    """A DEEPaaS v2 model written as a module of functions, with a file, an accept and a schema."""
    mod = types.ModuleType("v2_fixture")

    def get_predict_args() -> dict[str, Any]:
        return {
            "image": fields.Field(
                required=True, metadata={"type": "file", "location": "form", "description": "A photo."}
            ),
            "demo-int-range": fields.Int(
                load_default=5, validate=validate.Range(1, 100), metadata={"description": "A number in 1..100."}
            ),
            "numbers": fields.List(fields.Int(), load_default=[], metadata={"description": "Some integers."}),
            "accept": fields.Str(validate=validate.OneOf(["application/json", "image/png"])),
        }

    def predict(**kwargs: Any) -> Any:
        if kwargs["accept"] == "image/png":
            return PNG
        return {"label": kwargs["image"].original_filename, "probability": kwargs["demo-int-range"] / 100}

    mod.get_metadata = lambda: {"name": "v2-fixture", "Version": "1.0", "Summary": "A v2 fixture."}  # type: ignore[attr-defined]
    mod.get_predict_args = get_predict_args  # type: ignore[attr-defined]
    mod.predict = predict  # type: ignore[attr-defined]
    mod.schema = {"label": fields.Str(required=True), "probability": fields.Float()}  # type: ignore[attr-defined]
    return mod


class V1Model:
    """A DEEPaaS v1 model: predict_file/predict_url plus string test args."""

    def get_metadata(self) -> dict[str, Any]:
        return {"Name": "v1-fixture", "Version": "0.1"}

    def get_test_args(self) -> dict[str, Any]:
        return {"mode": {"default": "a", "help": "The mode.", "choices": ["a", "b"]}, "note": {"required": False}}

    def predict_file(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return {"size": os.path.getsize(path), **kwargs}

    def predict_url(self, url: str, **kwargs: Any) -> dict[str, Any]:
        return {"url": url, **kwargs}


def train_only_module() -> types.ModuleType:
    mod = types.ModuleType("train_only")
    mod.get_train_args = lambda: {"epochs": fields.Int(load_default=1)}  # type: ignore[attr-defined]
    mod.train = lambda **kwargs: {"done": True}  # type: ignore[attr-defined]
    return mod


def all_models() -> list[ModelAdapter]:
    return [
        TypedAdapter("typed-scorer", TypedScorer()),
        TypedAdapter("other-typed", OtherTyped()),
        V2Adapter("v2-fixture", v2_module()),
        V1Adapter("v1-fixture", V1Model()),
        V2Adapter("train-only", train_only_module()),
        TypedAdapter("modelaas-demo", DemoModel()),
    ]


# ------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def serve(tmp_path: Path, adapters: list[ModelAdapter] | None = None, **settings: Any) -> Iterator[TestClient]:
    s = Settings(data_dir=tmp_path, **settings)
    app = create_app(s, runtime=Runtime(s, all_models() if adapters is None else adapters))
    with TestClient(app) as client:
        yield client


def document(client: TestClient, base: str = "") -> dict[str, Any]:
    response = client.get(f"{base}/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    OpenAPIV31SpecValidator(doc).validate()
    return doc


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def response_schema(doc: dict[str, Any], path: str, method: str, status: int, media: str = "application/json") -> Any:
    response = resolve(doc, doc["paths"][path][method]["responses"][str(status)])
    return response["content"][media]["schema"]


def assert_valid(doc: dict[str, Any], schema: Any, instance: Any) -> None:
    """Validate an answer against a schema from the document, its components resolvable."""
    wrapper = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": doc["components"],
    }
    Draft202012Validator.check_schema(wrapper)
    Draft202012Validator(wrapper).validate(instance)


def request_schema(doc: dict[str, Any], path: str, media: str) -> dict[str, Any]:
    return doc["paths"][path]["post"]["requestBody"]["content"][media]["schema"]


def documented_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
    return {(path, m.upper()) for path, item in doc["paths"].items() for m in item if m in methods}


def served_operations(client: TestClient) -> set[tuple[str, str]]:
    """The app's routes as documented paths: predict and train routes expanded per model that has
    the method (v1 routes: per v1 model), ``{path:path}`` written ``{path}``, the rest as they are."""
    st = client.app.state.modelaas  # type: ignore[attr-defined]
    out = set()
    for route in client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, Route):  # the redirect of paths with repeated slashes: no operation of its own
            continue
        module = getattr(route.endpoint, "__module__", "")
        if getattr(route.endpoint, "__name__", "") == "_redirect_to_slash" or module == "modelaas.web.docs":
            continue
        path = route.path.replace("{path:path}", "{path}")
        segments = path.split("/")
        method_of = "predict" if "predict" in segments else "train" if "train" in segments else None
        if segments[-1] == "infer" and "versions" not in segments:  # OIP infer: documented per model
            method_of = "predict"
        for method in sorted((route.methods or set()) - {"HEAD"}):
            if method_of is None:
                out.add((path, method))
                continue
            v1 = path.startswith(f"{st.settings.base_path}/v1/")
            for m in st.runtime.models():
                if getattr(m, f"{method_of}_params") is not None and (m.interface == "v1" or not v1):
                    out.add((path.replace("{model}", m.name), method))
    return out


# --------------------------------------------------------------------- the document
SETTINGS_VARIANTS = [
    {},
    {"base_path": "/foo/bar"},
    {"predict_endpoint": False},
    {"debug_endpoint": True, "predict_timeout": 30.0},
]


@pytest.mark.parametrize("overrides", SETTINGS_VARIANTS, ids=["default", "base-path", "nopredict", "debug-timeout"])
def test_document_is_valid_and_matches_the_routes(tmp_path: Path, overrides: dict[str, Any]) -> None:
    base = overrides.get("base_path", "")
    with serve(tmp_path, **overrides) as client:
        doc = document(client, base)
        assert doc["openapi"] == "3.1.0"
        assert "servers" not in doc
        assert documented_operations(doc) == served_operations(client)
        op_ids = [op["operationId"] for item in doc["paths"].values() for op in item.values() if "operationId" in op]
        assert len(op_ids) == len(set(op_ids))
        swagger = client.get(f"{base}/swagger.json").json()
        OpenAPIV2SpecValidator(swagger).validate()
        assert documented_operations(swagger) == documented_operations(doc)  # the same API, as Swagger 2.0


def test_document_shape(tmp_path: Path) -> None:
    with serve(tmp_path) as client:
        doc = document(client)
    assert doc["info"]["title"] == "modelaas"
    assert doc["info"]["version"]
    for name in ("typed-scorer", "v2-fixture", "v1-fixture", "train-only", "modelaas-demo"):
        assert f"`{name}`" in doc["info"]["description"]
        assert name in [tag["name"] for tag in doc["tags"]]
    paths = doc["paths"]
    assert paths["/v2/models/typed-scorer/predict/"]["post"]["operationId"] == "predict_typed_scorer"
    assert paths["/v2/models/typed-scorer/predict/"]["post"]["tags"] == ["typed-scorer"]
    assert paths["/v1/models/v1-fixture/predict"]["post"]["operationId"] == "predict_v1_v1_fixture"
    assert "/v1/models/typed-scorer/predict" not in paths  # v1 routes only predict with v1 models
    assert "/v2/models/train-only/predict/" not in paths  # no predict method, no path
    assert "/v2/models/typed-scorer/train/" not in paths  # no train method, no train paths
    assert paths["/v2/models/train-only/train/"]["post"]["operationId"] == "train_train_only"
    assert "/v1/models/train-only/train" not in paths  # the v1 train route trains v1 models only
    assert set(paths["/v2/debug/"]["get"]["responses"]) == {"204"}
    schemas = doc["components"]["schemas"]
    assert schemas["Error"]["required"] == ["message", "request_id"]
    assert doc["components"]["responses"]["503"]["headers"]["Retry-After"]
    predict = paths["/v2/models/v2-fixture/predict/"]["post"]["responses"]
    assert {"400", "406", "413", "422", "500", "501", "503", "default"} <= set(predict)
    assert "504" not in predict  # no --predict-timeout, no 504
    assert "406" not in paths["/v2/models/typed-scorer/predict/"]["post"]["responses"]


def test_without_v1_models_there_are_no_v1_paths(tmp_path: Path) -> None:
    with serve(tmp_path, [TypedAdapter("typed-scorer", TypedScorer())]) as client:
        doc = document(client)
    assert not [p for p in doc["paths"] if p.startswith("/v1/")]
    assert "/v2/models/typed-scorer/predict/" in doc["paths"]


def test_nopredict_removes_predict_paths(tmp_path: Path) -> None:
    with serve(tmp_path, predict_endpoint=False) as client:
        doc = document(client)
    assert not [p for p in doc["paths"] if "predict" in p]
    assert "/v2/models/{model}/" in doc["paths"]


def test_base_path_prefixes_every_path(tmp_path: Path) -> None:
    with serve(tmp_path, base_path="foo") as client:
        doc = document(client, "/foo")
    assert doc["paths"]
    assert all(p.startswith("/foo/") for p in doc["paths"])
    assert "/foo/v2/models/modelaas-demo/predict/" in doc["paths"]


def test_typed_params_become_a_json_and_form_body(tmp_path: Path) -> None:
    with serve(tmp_path) as client:
        doc = document(client)
    body = doc["paths"]["/v2/models/typed-scorer/predict/"]["post"]["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}
    schema = request_schema(doc, "/v2/models/typed-scorer/predict/", "application/json")
    assert schema["required"] == ["text"]
    props = schema["properties"]
    assert props["text"] == {"type": "string", "minLength": 1, "description": "The text to score."}
    assert props["mode"]["enum"] == ["fast", "exact"] and props["mode"]["default"] == "fast"
    assert (props["top_k"]["minimum"], props["top_k"]["maximum"], props["top_k"]["default"]) == (1, 10, 2)
    assert "parameters" not in doc["paths"]["/v2/models/typed-scorer/predict/"]["post"]


def test_file_params_become_a_multipart_body_and_accept_is_not_a_field(tmp_path: Path) -> None:
    with serve(tmp_path) as client:
        doc = document(client)
    op = doc["paths"]["/v2/models/v2-fixture/predict/"]["post"]
    assert set(op["requestBody"]["content"]) == {"multipart/form-data"}
    schema = request_schema(doc, "/v2/models/v2-fixture/predict/", "multipart/form-data")
    props = schema["properties"]
    assert "accept" not in props
    assert props["image"] == {"type": "string", "format": "binary", "description": "A photo."}
    assert schema["required"] == ["image"]
    rng = props["demo-int-range"]
    assert (rng["minimum"], rng["maximum"], rng["default"], rng["description"]) == (1, 100, 5, "A number in 1..100.")
    assert props["numbers"] == {
        "type": "array",
        "items": {"type": "integer"},
        "default": [],
        "description": "Some integers.",
    }
    (accept,) = op["parameters"]
    assert accept["in"] == "query" and accept["name"] == "accept"
    assert accept["schema"]["enum"] == ["application/json", "image/png"]
    assert "Accept request header" in accept["description"]
    ok = op["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "image/png"}
    assert ok["image/png"]["schema"]["format"] == "binary"
    assert ok["application/json"]["schema"]["required"] == ["label"]  # the model's schema, not the envelope


def test_v1_params(tmp_path: Path) -> None:
    with serve(tmp_path) as client:
        doc = document(client)
    for path in ("/v2/models/v1-fixture/predict/", "/v1/models/v1-fixture/predict"):
        body = doc["paths"][path]["post"]["requestBody"]
        assert body["required"] is True  # data or url
        props = body["content"]["multipart/form-data"]["schema"]["properties"]
        assert props["data"]["items"] == {"type": "string", "format": "binary"}
        assert props["url"]["items"]["type"] == "string" and props["url"]["items"]["pattern"]
        assert props["mode"] == {"type": "string", "enum": ["a", "b"], "default": "a", "description": "The mode."}
        assert props["note"] == {"type": "string"}


def test_pydantic_defs_are_hoisted_without_clashes(tmp_path: Path) -> None:
    with serve(tmp_path) as client:
        doc = document(client)
    schemas = doc["components"]["schemas"]
    typed = response_schema(doc, "/v2/models/typed-scorer/predict/", "post", 200)
    other = response_schema(doc, "/v2/models/other-typed/predict/", "post", 200)
    typed_ref = typed["properties"]["scores"]["items"]["$ref"]
    other_ref = other["properties"]["best"]["$ref"]
    assert typed_ref != other_ref
    assert "label" in resolve(doc, {"$ref": typed_ref})["properties"]
    assert "value" in resolve(doc, {"$ref": other_ref})["properties"]
    assert "$defs" not in typed and "$defs" not in other
    assert {"Error", "ValidationErrors", "ModelEntry", "ModelList", "Predictions"} <= set(schemas)


def test_demo_model_document(tmp_path: Path) -> None:
    with serve(tmp_path, [TypedAdapter("modelaas-demo", DemoModel())]) as client:
        doc = document(client)
    op = doc["paths"]["/v2/models/modelaas-demo/predict/"]["post"]
    props = op["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert set(props) == {"image", "label", "top_k", "threshold", "invert", "weights"}
    assert props["image"]["contentMediaType"] == "image/*"
    assert props["label"]["enum"] == ["cat", "dog", "bird"]
    assert op["parameters"][0]["schema"]["enum"] == ["application/json", "image/png"]
    assert response_schema(doc, "/v2/models/modelaas-demo/predict/", "post", 200) == {
        "$ref": "#/components/schemas/Predictions"
    }


# ----------------------------------------------------------- answers match the document
def test_simple_answers_validate(tmp_path: Path) -> None:
    with serve(tmp_path, base_path="/b") as client:
        doc = document(client, "/b")
        for path in ("/b/", "/b/v2/", "/b/v1/", "/b/v2/models/", "/b/v1/models/", "/b/healthz", "/b/readyz"):
            answer = client.get(path)
            assert answer.status_code in ((200, 503) if path.endswith("readyz") else (200,)), path
            assert_valid(doc, response_schema(doc, path, "get", answer.status_code), answer.json())
        for name in ("typed-scorer", "v2-fixture", "v1-fixture", "train-only", "modelaas-demo"):
            answer = client.get(f"/b/v2/models/{name}/")
            assert answer.status_code == 200
            assert_valid(doc, response_schema(doc, "/b/v2/models/{model}/", "get", 200), answer.json())
        answer = client.get("/b/v1/models/v1-fixture")
        assert_valid(doc, response_schema(doc, "/b/v1/models/{model}", "get", 200), answer.json())
        assert client.get("/b/v2/debug/").status_code == 204


def test_not_found_answer_validates(tmp_path: Path) -> None:
    with serve(tmp_path) as client:
        doc = document(client)
        for path, template in (
            ("/v2/models/nope/", "/v2/models/{model}/"),
            ("/v1/models/typed-scorer", "/v1/models/{model}"),
        ):
            answer = client.get(path)
            assert answer.status_code == 404
            assert_valid(doc, response_schema(doc, template, "get", 404), answer.json())


def test_typed_predict_answers_validate(tmp_path: Path) -> None:
    path = "/v2/models/typed-scorer/predict/"
    with serve(tmp_path) as client:
        doc = document(client)
        answer = client.post(path, json={"text": "hi", "top_k": 3})
        assert answer.status_code == 200, answer.text
        assert_valid(doc, response_schema(doc, path, "post", 200), answer.json())
        answer = client.post(path, data={"mode": "exact"})
        assert answer.status_code == 422
        assert answer.json() == {"text": ["Missing data for required field."]}
        assert_valid(doc, response_schema(doc, path, "post", 422), answer.json())


def test_v2_predict_answers_validate(tmp_path: Path) -> None:
    path = "/v2/models/v2-fixture/predict/"
    with serve(tmp_path) as client:
        doc = document(client)
        files = {"image": ("cat.png", PNG, "image/png")}
        answer = client.post(path, files=files, data={"demo-int-range": "7"})
        assert answer.status_code == 200, answer.text
        assert_valid(doc, response_schema(doc, path, "post", 200), answer.json())
        answer = client.post(path, files=files, headers={"Accept": "image/png"})
        assert answer.status_code == 200
        assert answer.headers["content-type"] in doc["paths"][path]["post"]["responses"]["200"]["content"]
        answer = client.post(path, files=files, data={"numbers": ["1", "x"]})
        assert answer.status_code == 422
        assert_valid(doc, response_schema(doc, path, "post", 422), answer.json())
        answer = client.post(path, data={"demo-int-range": "7"})
        assert answer.status_code == 422
        assert_valid(doc, response_schema(doc, path, "post", 422), answer.json())
        answer = client.post(path, files=files, headers={"Accept": "text/csv"})
        assert answer.status_code == 406
        assert_valid(doc, response_schema(doc, path, "post", 406), answer.json())


def test_v1_and_demo_predict_answers_validate(tmp_path: Path) -> None:
    with serve(tmp_path) as client:
        doc = document(client)
        for path in ("/v2/models/v1-fixture/predict/", "/v1/models/v1-fixture/predict"):
            answer = client.post(path, files={"data": ("x.bin", b"12345", "application/octet-stream")})
            assert answer.status_code == 200, answer.text
            assert_valid(doc, response_schema(doc, path, "post", 200), answer.json())
        answer = client.post("/v1/models/v1-fixture/predict")
        assert answer.status_code == 400
        assert_valid(doc, response_schema(doc, "/v1/models/v1-fixture/predict", "post", 400), answer.json())
        path = "/v2/models/modelaas-demo/predict/"
        answer = client.post(path, files={"image": ("cat.png", PNG, "image/png")}, data={"top_k": "3"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "OK"
        assert_valid(doc, response_schema(doc, path, "post", 200), answer.json())


# ------------------------------------------------------------------------ Swagger UI
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def test_swagger_ui_page_and_assets(tmp_path: Path) -> None:
    with serve(tmp_path, [TypedAdapter("modelaas-demo", DemoModel())], base_path="/foo") as client:
        page = client.get("/foo/api")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '"/foo/openapi.json"' in page.text
        for name, media in ASSETS.items():
            assert f"/foo/api/static/{name}" in page.text
            asset = client.get(f"/foo/api/static/{name}")
            assert asset.status_code == 200
            assert asset.headers["content-type"].split(";")[0] == media
            assert len(asset.content) > 100
            assert b"sourceMappingURL" not in asset.content
        assert client.get("/foo/api/static/LICENSE").status_code == 404


def test_vendored_swagger_ui_files() -> None:
    import modelaas.web

    folder = Path(modelaas.web.__file__).parent / "static" / "swagger-ui"
    assert folder.joinpath("VERSION").read_text().strip().startswith("5.")
    assert "Apache License" in folder.joinpath("LICENSE").read_text()


def test_no_docs_endpoint(tmp_path: Path) -> None:
    with serve(tmp_path, doc_endpoint=False) as client:
        assert client.get("/openapi.json").status_code == 404
        assert client.get("/api").status_code == 404
        assert client.get("/").json()["links"] == []


def test_accept_header_file_type_is_documented_for_the_demo(tmp_path: Path) -> None:
    path = "/v2/models/modelaas-demo/predict/"
    with serve(tmp_path, [TypedAdapter("modelaas-demo", DemoModel())]) as client:
        doc = document(client)
        answer = client.post(path, files={"image": ("a.png", PNG, "image/png")}, headers={"Accept": "image/png"})
        assert answer.status_code == 200
        assert answer.content.startswith(b"\x89PNG")
        assert answer.headers["content-type"] in doc["paths"][path]["post"]["responses"]["200"]["content"]


def test_non_finite_ranges_and_defaults_do_not_break_the_document(make_client):
    from modelaas import Input, Model
    from modelaas.model.adapters import TypedAdapter

    class Odd(Model):
        def predict(self, x: float = Input(float("nan"), ge=float("-inf"), le=float("inf"))) -> dict:
            return {}

    r = make_client(TypedAdapter("odd", Odd())).get("/openapi.json")
    assert r.status_code == 200
    schema = r.json()["paths"]["/v2/models/odd/predict/"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert schema["properties"]["x"] == {"type": "number"}


# ----------------------------------------------------------------------- train routes
JOB_OPERATIONS = {
    "/": {"post", "get"},
    "/{job}": {"get", "delete"},
    "/{job}/logs": {"get"},
    "/{job}/events": {"get"},
    "/{job}/files": {"get"},
    "/{job}/files/{path}": {"get"},
}


def test_train_paths_per_model_with_train(tmp_path: Path) -> None:
    with serve(tmp_path, base_path="/b") as client:
        doc = document(client, "/b")
    paths = doc["paths"]
    for name in ("train-only", "modelaas-demo"):
        for suffix, methods in JOB_OPERATIONS.items():
            assert set(paths[f"/b/v2/models/{name}/train{suffix}"]) - {"parameters"} == methods
    for name in ("typed-scorer", "other-typed", "v2-fixture", "v1-fixture"):  # no train method
        assert not [p for p in paths if p.startswith(f"/b/v2/models/{name}/train")]
    assert not [p for p in paths if p.startswith("/b/v1/") and p.endswith("/train")]
    submit = paths["/b/v2/models/train-only/train/"]["post"]
    assert submit["tags"] == ["train-only"]
    body = submit["requestBody"]
    assert set(body["content"]) == {"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}
    assert body["content"]["application/json"]["schema"]["properties"]["epochs"] == {"type": "integer", "default": 1}
    assert {"200", "400", "413", "422", "429"} <= set(submit["responses"])
    too_many = resolve(doc, submit["responses"]["429"])
    assert too_many["headers"]["Retry-After"] and "Error" in too_many["content"]["application/json"]["schema"]["$ref"]
    assert response_schema(doc, "/b/v2/models/train-only/train/", "post", 200) == {
        "$ref": "#/components/schemas/JobRecord"
    }
    listing = paths["/b/v2/models/train-only/train/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert resolve(doc, listing["schema"]) == {"type": "array", "items": {"$ref": "#/components/schemas/JobRecord"}}


def test_job_record_schema_describes_to_record() -> None:
    from modelaas.jobs.records import JobStatus
    from modelaas.web.openapi.train import TRAIN_SCHEMAS

    record = TRAIN_SCHEMAS["JobRecord"]
    assert record["required"] == ["uuid", "date", "args", "status"]
    assert record["properties"]["status"]["enum"] == [s.value for s in JobStatus]
    assert set(record["properties"]) == {
        "uuid", "date", "args", "status", "message", "result",
        "model", "progress", "metrics", "created_at", "started_at", "finished_at", "cancel_requested",
        "log_lines", "log_lines_dropped",
    }  # fmt: skip
    assert record["properties"]["result"]["required"] == ["output", "finish_date", "duration"]


def test_job_routes_parameters_and_answers_are_described(tmp_path: Path) -> None:
    with serve(tmp_path) as client:
        doc = document(client)
    prefix = "/v2/models/train-only/train/{job}"
    for suffix in ("", "/logs", "/events", "/files", "/files/{path}"):
        names = [p["name"] for p in doc["paths"][prefix + suffix]["parameters"]]
        assert names == (["job", "path"] if suffix.endswith("{path}") else ["job"])
    logs = doc["paths"][prefix + "/logs"]["get"]
    assert logs["parameters"] == [
        {
            "name": "offset",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 0, "default": 0},
            "description": logs["parameters"][0]["description"],
        }
    ]
    ok = logs["responses"]["200"]
    assert set(ok["content"]) == {"text/plain"}
    assert set(ok["headers"]) == {"X-Next-Offset", "X-Job-Status", "X-Request-ID"}
    events = doc["paths"][prefix + "/events"]["get"]
    assert [(p["name"], p["in"]) for p in events["parameters"]] == [("Last-Event-ID", "header"), ("after", "query")]
    assert set(events["responses"]["200"]["content"]) == {"text/event-stream"}
    assert {"400", "404"} <= set(events["responses"])
    download = doc["paths"][prefix + "/files/{path}"]["get"]["responses"]
    assert set(download["200"]["content"]) == {"application/octet-stream"} and "404" in download
    files = response_schema(doc, prefix + "/files", "get", 200)
    assert resolve(doc, files["items"])["required"] == ["path", "size", "href"]
    for method, suffix in (("get", ""), ("delete", ""), ("get", "/logs"), ("get", "/files")):
        assert "404" in doc["paths"][prefix + suffix][method]["responses"]


def test_notrain_endpoint_removes_train_paths(tmp_path: Path) -> None:
    with serve(tmp_path, train_endpoint=False) as client:
        doc = document(client)
        assert documented_operations(doc) == served_operations(client)
    assert not [p for p in doc["paths"] if "train" in p.split("/")]
    assert "JobRecord" not in doc["components"]["schemas"]
    assert "TooManyJobs" not in doc["components"]["responses"]


def test_train_answers_validate(make_client: Any) -> None:
    """A real training: every answer of the train routes matches the document."""
    client = make_client("trainer:Trainer")
    doc = document(client)
    assert documented_operations(doc) == served_operations(client)
    base = "/v2/models/trainer/train"
    body = doc["paths"][f"{base}/"]["post"]["requestBody"]
    assert set(body["content"]) == {"multipart/form-data"}  # a file argument
    assert body["content"]["multipart/form-data"]["schema"]["properties"]["data"]["format"] == "binary"
    answer = client.post(f"{base}/", data={"epochs": "2"})
    assert answer.status_code == 200, answer.text
    assert_valid(doc, response_schema(doc, f"{base}/", "post", 200), answer.json())
    job = answer.json()["uuid"]
    record = answer.json()
    for _ in range(600):
        record = client.get(f"{base}/{job}").json()
        if record["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert record["status"] == "done", record
    assert_valid(doc, response_schema(doc, f"{base}/{{job}}", "get", 200), record)
    assert_valid(doc, response_schema(doc, f"{base}/", "get", 200), client.get(f"{base}/").json())
    files = client.get(f"{base}/{job}/files")
    assert_valid(doc, response_schema(doc, f"{base}/{{job}}/files", "get", 200), files.json())
    download = client.get(files.json()[0]["href"])
    ok = doc["paths"][f"{base}/{{job}}/files/{{path}}"]["get"]["responses"]["200"]
    assert download.status_code == 200 and download.headers["content-type"] in ok["content"]
    logs = client.get(f"{base}/{job}/logs", params={"offset": 1})
    ok = doc["paths"][f"{base}/{{job}}/logs"]["get"]["responses"]["200"]
    assert logs.headers["content-type"].split(";")[0] in ok["content"]
    assert_valid(doc, ok["headers"]["X-Job-Status"]["schema"], logs.headers["X-Job-Status"])
    assert_valid(doc, ok["headers"]["X-Next-Offset"]["schema"], int(logs.headers["X-Next-Offset"]))
    events = client.get(f"{base}/{job}/events")
    ok = doc["paths"][f"{base}/{{job}}/events"]["get"]["responses"]["200"]
    assert events.headers["content-type"].split(";")[0] in ok["content"]
    for path, template, method in (
        (f"{base}/nope", f"{base}/{{job}}", "get"),
        (f"{base}/nope", f"{base}/{{job}}", "delete"),
        (f"{base}/nope/logs", f"{base}/{{job}}/logs", "get"),
        (f"{base}/nope/events", f"{base}/{{job}}/events", "get"),
        (f"{base}/nope/files", f"{base}/{{job}}/files", "get"),
        (f"{base}/{job}/files/nope.txt", f"{base}/{{job}}/files/{{path}}", "get"),
        (f"{base}/{job}/logs?offset=-1", f"{base}/{{job}}/logs", "get"),
        (f"{base}/{job}/events?after=x", f"{base}/{{job}}/events", "get"),
    ):
        answer = client.request(method.upper(), path)
        assert answer.status_code in (400, 404), (path, answer.status_code)
        assert_valid(doc, response_schema(doc, template, method, answer.status_code), answer.json())
    answer = client.post(f"{base}/", data={"epochs": "0"})
    assert answer.status_code == 422
    assert_valid(doc, response_schema(doc, f"{base}/", "post", 422), answer.json())
    deleted = client.delete(f"{base}/{job}")
    assert_valid(doc, response_schema(doc, f"{base}/{{job}}", "delete", 200), deleted.json())


def test_v1_train_route_is_described_and_answers_validate(make_client: Any) -> None:
    client = make_client("v1_seed")
    doc = document(client)
    assert documented_operations(doc) == served_operations(client)
    path = "/v1/models/v1-seed/train"
    op = doc["paths"][path]["put"]
    assert op["operationId"] == "train_v1_v1_seed" and op["tags"] == ["v1-seed"]
    props = op["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert "type" not in props["epochs"]  # any JSON value: the model gets its JSON text
    assert props["lr_step_schedule"] == {"default": "[0.7, 0.9]"}  # any JSON value
    form = op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert form["epochs"] == {"type": "string", "default": "1"} and form["lr_step_schedule"]["type"] == "string"
    assert {"200", "422", "429", "500"} <= set(op["responses"])
    assert "/v2/models/v1-seed/train/" in doc["paths"]  # a v1 model trains on the v2 routes too
    answer = client.put(path, data={"epochs": "2"})
    assert answer.status_code == 200, answer.text
    assert_valid(doc, response_schema(doc, path, "put", 200), answer.json())
    answer = client.put(path, data={"epochs": "{"})  # the model's json.loads fails
    assert answer.status_code == 500
    assert_valid(doc, response_schema(doc, path, "put", 500), answer.json())
    answer = client.put(path)
    assert answer.status_code == 422
    assert_valid(doc, response_schema(doc, path, "put", 422), answer.json())


# --------------------------------------------------------------- access control (tokens)
ADMIN_TOKEN = "openapi-admin-token-0123456789"
PREDICT_TOKEN = "openapi-predict-token-0123456789"
TOKENS = f"admin {ADMIN_TOKEN}; predict {PREDICT_TOKEN}"
METHODS = ("get", "put", "post", "delete")


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def concrete(path: str) -> str:
    """A documented path with its parameters filled in (a model that exists, a job that does not)."""
    return path.replace("{model}", "v1-fixture").replace("{job}", "nojob").replace("{path}", "x.txt")


def assert_answer_documented(doc: dict[str, Any], op: dict[str, Any], answer: Any) -> dict[str, Any]:
    """``answer`` is one of ``op``'s responses: its JSON body and every required header as documented."""
    response = resolve(doc, op["responses"][str(answer.status_code)])
    assert_valid(doc, response["content"]["application/json"]["schema"], answer.json())
    for name, header in response.get("headers", {}).items():
        header = resolve(doc, header)
        if header.get("required"):
            assert name in answer.headers, name
            assert_valid(doc, header["schema"], answer.headers[name])
    return response


def test_without_tokens_the_document_has_no_security(tmp_path: Path) -> None:
    with serve(tmp_path) as client:
        doc = document(client)
    assert "securitySchemes" not in doc["components"] and "security" not in doc
    assert not {"401", "403"} & set(doc["components"]["responses"])
    for _, _, op in operations(doc):
        assert "security" not in op and not {"401", "403"} & set(op["responses"])
    assert "Access control" not in doc["info"]["description"]


def test_with_tokens_the_document_describes_access_control(tmp_path: Path) -> None:
    with serve(tmp_path, tokens=TOKENS, debug_endpoint=True, base_path="/b") as client:
        doc = document(client, "/b")
    assert doc["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer"},
        "accessTokenQuery": {"type": "apiKey", "in": "query", "name": "access_token"},
    }
    assert "security" not in doc  # per operation only: the public ones need nothing
    unauthorized = doc["components"]["responses"]["401"]
    assert set(unauthorized["headers"]) == {"WWW-Authenticate", "X-Request-ID"}
    assert unauthorized["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    scopes = {
        "/b/": None, "/b/v2/": None, "/b/v1/": None, "/b/healthz": None, "/b/readyz": None,
        "/b/v2/models/": "any", "/b/v2/models/{model}/": "any", "/b/v1/models/": "any", "/b/v1/models/{model}": "any",
        "/b/v2/debug/": "admin",
        "/b/v2/models/typed-scorer/predict/": "predict", "/b/v1/models/v1-fixture/predict": "predict",
        "/b/v2/models/train-only/train/": "train", "/b/v2/models/train-only/train/{job}/files/{path}": "train",
    }  # fmt: skip
    for path, scope in scopes.items():
        for method in METHODS:
            op = doc["paths"][path].get(method)
            if op is None:
                continue
            if scope is None:
                assert "security" not in op and "401" not in op["responses"], path
                continue
            assert op["security"] == [{"bearer": []}], path
            assert op["responses"]["401"] == {"$ref": "#/components/responses/401"}
            assert ("403" in op["responses"]) is (scope != "any"), path  # any valid token will do: never 403
            assert ("any scope" if scope == "any" else f"the `{scope}` scope") in op["description"], path
    events = doc["paths"]["/b/v2/models/train-only/train/{job}/events"]["get"]
    assert events["security"] == [{"bearer": []}, {"accessTokenQuery": []}]
    assert "access_token=<token>" in events["description"]
    assert "Access control is on" in doc["info"]["description"]


def test_documented_security_is_what_the_middleware_enforces(tmp_path: Path) -> None:
    """Every operation: 401 without a token exactly when documented; 403 for a predict-only token exactly
    where a 403 is documented; each refusal is one of the operation's documented answers."""
    with serve(tmp_path, tokens=TOKENS, debug_endpoint=True) as client:
        doc = document(client)
        for path, method, op in operations(doc):
            url = concrete(path)
            answer = client.request(method.upper(), url)
            assert (answer.status_code == 401) is ("security" in op), (method, path, answer.status_code)
            if answer.status_code == 401:
                assert_answer_documented(doc, op, answer)
                assert answer.headers["WWW-Authenticate"].startswith("Bearer")
                assert answer.json()["request_id"] == answer.headers["X-Request-ID"]
            answer = client.request(method.upper(), url, headers={"Authorization": f"Bearer {PREDICT_TOKEN}"})
            refused = "403" in op["responses"] and "`predict` scope" not in op["description"]
            assert (answer.status_code == 403) is refused, (method, path, answer.status_code)
            if answer.status_code == 403:
                assert_answer_documented(doc, op, answer)
            wrong = client.request(method.upper(), url, headers={"Authorization": "Bearer not-a-known-token-at-all"})
            assert (wrong.status_code == 401) is ("security" in op)
        events = "/v2/models/train-only/train/nojob/events"
        assert client.get(events, params={"access_token": ADMIN_TOKEN}).status_code == 404  # past access control
        assert client.get(events, params={"access_token": PREDICT_TOKEN}).status_code == 403
        files = "/v2/models/train-only/train/nojob/files"  # the query token is for the events route only
        assert client.get(files, params={"access_token": ADMIN_TOKEN}).status_code == 401


# ------------------------------------------------------------------ request ids, 408, 431
def test_every_answer_documents_the_request_id(tmp_path: Path) -> None:
    with serve(tmp_path) as client:
        doc = document(client)
        error = doc["components"]["schemas"]["Error"]
        assert error["required"] == ["message", "request_id"]
        assert error["properties"]["request_id"]["type"] == "string"
        header = doc["components"]["headers"]["X-Request-ID"]
        assert header["required"] is True and header["schema"]["type"] == "string"
        shared = doc["components"]["responses"]
        for name, response in shared.items():
            assert response["headers"]["X-Request-ID"] == {"$ref": "#/components/headers/X-Request-ID"}, name
        for path, method, op in operations(doc):
            for code, response in op["responses"].items():
                assert "$ref" in response or "X-Request-ID" in response["headers"], (method, path, code)
        op = doc["paths"]["/v2/models/{model}/"]["get"]
        answer = client.get("/v2/models/nope/", headers={"X-Request-ID": "my-id.1"})
        assert answer.status_code == 404
        assert_answer_documented(doc, op, answer)
        assert answer.json()["request_id"] == answer.headers["X-Request-ID"] == "my-id.1"
        answer = client.get("/v2/models/typed-scorer/")
        assert_answer_documented(doc, op, answer)
        predict = doc["paths"]["/v2/models/typed-scorer/predict/"]["post"]
        answer = client.post("/v2/models/typed-scorer/predict/", json={})
        assert answer.status_code == 422 and "request_id" not in answer.json()  # the bare DEEPaaS map
        assert_answer_documented(doc, predict, answer)
    description = doc["info"]["description"]
    assert "431" in description and "--max-header-size" in description and "--header-timeout" in description


def test_operations_with_a_body_document_408(tmp_path: Path) -> None:
    with serve(tmp_path) as client:
        doc = document(client)
    assert doc["components"]["responses"]["408"]["content"]["application/json"]["schema"] == ref_to("Error")
    for path, method, op in operations(doc):
        takes_body = method in ("post", "put")
        assert ("408" in op["responses"]) is takes_body, (method, path)


def ref_to(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def test_a_slow_body_answer_validates(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, body_timeout=0.3)
    app = create_app(s, runtime=Runtime(s, [TypedAdapter("typed-scorer", TypedScorer())]))
    path = "/v2/models/typed-scorer/predict/"
    with TestClient(app) as client:
        doc = document(client)
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        if answer.get("sent"):
            await anyio.sleep(3600)  # the rest of the body never comes
        answer["sent"] = True
        return {"type": "http.request", "body": b'{"text": ', "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 5000), "state": {}, "headers": [(b"content-type", b"application/json")],
    }  # fmt: skip

    async def drive() -> None:
        with anyio.fail_after(10):
            await app(scope, receive, send)

    anyio.run(drive)
    assert answer["status"] == 408
    body = json.loads(answer["body"])
    assert_valid(doc, response_schema(doc, path, "post", 408), body)
    assert body["request_id"] == answer["headers"]["x-request-id"]


# ---------------------------------------------------------- v1 arguments, lists, accept
def v1_body(doc: dict[str, Any], path: str) -> dict[str, Any]:
    return doc["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]


@pytest.mark.parametrize(
    ("instance", "valid"),
    [
        ({"data": ["file"]}, True),
        ({"url": ["http://example.org/a.png"]}, True),
        ({"url": ["", "https://example.org/"]}, True),  # empty URLs are dropped
        ({"data": ["file"], "url": [""]}, True),
        ({"data": ["file"], "url": ["http://example.org/"]}, False),  # both
        ({}, False),  # neither
        ({"data": [], "url": []}, False),
        ({"url": [""]}, False),
        ({"url": ["ftp://example.org/"]}, False),
        ({"data": [], "url": ["http://example.org/"]}, True),  # no data part is sent for an empty list
    ],
)
def test_v1_predict_needs_exactly_one_of_data_and_url(tmp_path: Path, instance: Any, valid: bool) -> None:
    with serve(tmp_path, [V1Adapter("v1-fixture", V1Model())]) as client:
        doc = document(client)
    for path in ("/v2/models/v1-fixture/predict/", "/v1/models/v1-fixture/predict"):
        schema = v1_body(doc, path)
        assert set(schema["properties"]) == {"data", "url", "mode", "note"}
        assert Draft202012Validator(schema).is_valid(instance) is valid, (path, instance)


def test_v1_predict_answers_match_exactly_one_of(tmp_path: Path) -> None:
    path = "/v1/models/v1-fixture/predict"
    files = [("data", ("x.bin", b"12345", "application/octet-stream"))]
    with serve(tmp_path, [V1Adapter("v1-fixture", V1Model())]) as client:
        doc = document(client)
        schema = v1_body(doc, path)
        for data, fields, status in (
            (files, {"url": ""}, 200),
            (files, {"url": "http://example.org/a"}, 400),
            ([], {"url": ""}, 400),
            ([], {"url": "ftp://example.org/a"}, 400),
        ):
            answer = client.post(path, files=data or None, data=fields)
            assert answer.status_code == status, (fields, answer.text)
            instance = {**({"data": ["file"]} if data else {}), "url": [fields["url"]]}
            assert Draft202012Validator(schema).is_valid(instance) is (status == 200)
            if status == 400:
                assert_valid(doc, response_schema(doc, path, "post", 400), answer.json())


def test_v1_arguments_take_any_json_value_in_json_bodies(make_client: Any) -> None:
    client = make_client("v1_seed")
    doc = document(client)
    path = "/v1/models/v1-seed/train"
    content = doc["paths"][path]["put"]["requestBody"]["content"]
    json_schema = content["application/json"]["schema"]
    for media in ("application/x-www-form-urlencoded", "multipart/form-data"):
        assert all(p["type"] == "string" for p in content[media]["schema"]["properties"].values())
    validator = Draft202012Validator(json_schema)
    accepted: list[dict[str, Any]] = [
        {"epochs": 2, "use_early_stopping": True},
        {"epochs": "2", "lr_step_schedule": [1]},
        {"epochs": []},  # a JSON array is a value: the model gets "[]"
    ]
    for body in accepted:
        assert validator.is_valid(body)
        answer = client.put(path, json=body)
        assert answer.status_code == 200, answer.text
    for body in ({"lr_step_schedule": "[1]"},):  # epochs is required
        assert not validator.is_valid(body)
        answer = client.put(path, json=body)
        assert answer.status_code == 422
        assert_valid(doc, response_schema(doc, path, "put", 422), answer.json())


def test_v1_json_values_with_choices_are_exactly_what_the_validator_takes() -> None:
    from jsonschema import Draft202012Validator as Validator

    from modelaas.errors import ValidationError
    from modelaas.model.legacy import params_from_v1
    from modelaas.model.schema import param_schema
    from modelaas.web.openapi.models import v1_json_value

    choices = ["a", "1", "true", "null", "2.5", "[1, 2]", '{"k": 1}']
    params = params_from_v1({"x": {"choices": choices, "required": True}}, model="m", method="get_train_args")
    (param,) = params
    schema = v1_json_value(param, param_schema(param))
    for value in ("a", "b", 1, 2, True, False, None, 2.5, "1", "true", [], ["a"], [1], [[1, 2]], [1, 2], ["b"],
                  {"k": 1}, [{"k": 1}], [["a"]], "[1, 2]", {"k": 2}, [[1, 2], "x"]):  # fmt: skip
        try:
            params.validate({"x": value})
            accepted = True
        except ValidationError:
            accepted = False
        assert Validator(schema).is_valid(value) is accepted, value


class Lister(Model):
    def predict(self, xs: list[int], tags: list[str] = Input([], description="Optional.")) -> dict[str, int]:
        return {"n": len(xs)}


def test_required_lists_need_an_item_in_forms_only(make_client: Any) -> None:
    client = make_client(TypedAdapter("lister", Lister()))
    doc = document(client)
    path = "/v2/models/lister/predict/"
    content = doc["paths"][path]["post"]["requestBody"]["content"]
    assert "minItems" not in content["application/json"]["schema"]["properties"]["xs"]
    for media in ("application/x-www-form-urlencoded", "multipart/form-data"):
        props = content[media]["schema"]["properties"]
        assert props["xs"]["minItems"] == 1 and "minItems" not in props["tags"], media  # tags: not required
    answer = client.post(path, data={"tags": "a"})  # an empty list is no repeated key: missing
    assert answer.status_code == 422 and "xs" in answer.json()
    assert not Draft202012Validator(content["application/x-www-form-urlencoded"]["schema"]).is_valid({"xs": []})
    answer = client.post(path, json={"xs": []})  # an empty JSON array is a value
    assert answer.status_code == 200, answer.text
    assert Draft202012Validator(content["application/json"]["schema"]).is_valid({"xs": []})
    assert_valid(doc, response_schema(doc, path, "post", 200), answer.json())
    typed = make_client("typed_basic:Classifier")  # a file argument: multipart only
    body = document(typed)["paths"]["/v2/models/typed-basic/predict/"]["post"]["requestBody"]["content"]
    assert body["multipart/form-data"]["schema"]["properties"]["features"]["minItems"] == 1


def test_an_empty_accept_argument_is_documented_and_counts_as_not_given(tmp_path: Path) -> None:
    path = "/v2/models/modelaas-demo/predict/"
    with serve(tmp_path, [TypedAdapter("modelaas-demo", DemoModel())]) as client:
        doc = document(client)
        (accept,) = doc["paths"][path]["post"]["parameters"]
        assert accept["allowEmptyValue"] is True and "empty value" in accept["description"]
        answer = client.post(f"{path}?accept=", files={"image": ("a.png", PNG, "image/png")})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        assert_valid(doc, response_schema(doc, path, "post", 200), answer.json())
