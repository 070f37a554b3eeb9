"""A typed model's warm() gets the active version's folder (``self.artefacts``), in process:
``Runtime.load(settings, serving=...)`` as a serving process calls it."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from modelaas.runtime import Runtime
from modelaas.settings import Settings
from modelaas.versions.serving import ServingState
from modelaas.web.app import create_app

MODEL = "/v2/models/versioned"


def app_of(settings: Settings, serving: dict[str, ServingState] | None) -> TestClient:
    runtime = Runtime.load(settings, serving=serving)
    return TestClient(create_app(settings, runtime=runtime))


def test_warm_reads_the_active_versions_files(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", model="versioned:Versioned", model_name="versioned")
    for number, scale in ((1, 3.0), (2, 4.0)):
        folder = settings.data_dir / "versions" / "versioned" / str(number)
        folder.mkdir(parents=True)
        (folder / "weights.json").write_text(json.dumps({"scale": scale}))

    with app_of(settings, {"versioned": ServingState("versioned", 2, 5)}) as c:
        adapter = c.app.state.modelaas.runtime.model("versioned")
        assert (adapter.serving_version, adapter.generation) == (2, 5)
        assert adapter.target.artefacts == settings.data_dir / "versions" / "versioned" / "2"
        r = c.post(f"{MODEL}/predict/", params={"x": 2})
        assert r.json()["predictions"] == {"y": 8.0, "scale": 4.0}
        assert (r.headers["x-modelaas-model-version"], r.headers["x-modelaas-generation"]) == ("2", "5")

    with app_of(settings, {"versioned": ServingState("versioned", None, 3)}) as c:  # back to the model as installed
        r = c.post(f"{MODEL}/predict/", params={"x": 2})
        assert (
            r.json()["predictions"]["scale"] == 1.0
            and c.app.state.modelaas.runtime.model("versioned").target.artefacts is None
        )
        assert "x-modelaas-model-version" not in r.headers and r.headers["x-modelaas-generation"] == "3"


def test_without_a_serving_state_the_model_warms_as_installed(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", model="versioned:Versioned", model_name="versioned")
    with app_of(settings, None) as c:
        r = c.post(f"{MODEL}/predict/", params={"x": 2})
        assert r.json()["predictions"] == {"y": 2.0, "scale": 1.0}
        assert r.headers["x-modelaas-generation"] == "0" and "x-modelaas-model-version" not in r.headers
    with app_of(settings, {"other-model": ServingState("other-model", 1, 1)}) as c:  # another model's state
        assert c.post(f"{MODEL}/predict/", params={"x": 2}).json()["predictions"]["scale"] == 1.0
