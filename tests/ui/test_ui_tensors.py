"""A tensor argument in the web UI: a JSON field, checked before sending, answered by the model."""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_support import app_server

from modelaas.runtime import Runtime
from modelaas.settings import Settings
from modelaas.web.app import create_app
from support import load_fixture

pytestmark = pytest.mark.slow
pytest.importorskip("numpy")


def test_a_tensor_argument_is_a_json_field(tmp_path: Path, open_ui) -> None:
    settings = Settings(data_dir=tmp_path / "data", train_endpoint=False)
    app = create_app(
        settings, runtime=Runtime(settings, [load_fixture("tensors_typed:Scaled", "scaled", settings=settings)])
    )
    with app_server(app) as url:
        page = open_ui(url).page
        x = page.locator("#predict-f-x")
        assert x.evaluate("el => el.tagName") == "TEXTAREA"
        assert "Nested JSON arrays" in page.inner_text('#predict-form [data-field="x"]')
        x.fill("[[1, 2], [3")  # not JSON: said next to the field, nothing sent
        page.click("#predict-form button[type=submit]")
        error = page.locator('#predict-form [data-field="x"] .field-error')
        error.wait_for()
        assert "not valid JSON" in error.inner_text()
        x.fill("[[1, 2, 3]]")  # the server's shape check, next to the field
        page.click("#predict-form button[type=submit]")
        page.wait_for_function(
            "document.querySelector('#predict-form [data-field=\"x\"] .field-error').textContent.includes('shape')"
        )
        x.fill("[[1, 2], [3, 4]]")
        page.fill("#predict-f-factor", "10")
        page.click("#predict-form button[type=submit]")
        page.wait_for_selector("#predict-result:not([hidden])")
        assert "40" in page.inner_text("#predict-result")
