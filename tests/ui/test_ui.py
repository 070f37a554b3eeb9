"""The web UI in a real headless browser (Debian's chromium through Playwright).

Each test starts a real ``modelaas serve`` (the demo model unless said otherwise) and
drives the page as a person would. The screenshots in docs/ui.md are taken here (see
conftest: ``MODELAAS_UPDATE_SCREENSHOTS=1`` writes them to docs/img/).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import ui_models
from ui_support import app_server, png, wait_ready

pytestmark = pytest.mark.slow

PICTURE = png()

UNLABELLED = """() => Array.from(document.querySelectorAll("input, select, textarea"))
  .filter((el) => el.type !== "hidden")
  .filter((el) => {
    const byFor = el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`);
    return !(byFor || (el.getAttribute("aria-label") || "").trim());
  })
  .map((el) => el.outerHTML)"""

NO_SIDE_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


def field(page: Any, name: str, form: str = "predict") -> Any:
    return page.locator(f'#{form}-form [data-field="{name}"]')


def attach_picture(page: Any, name: str = "tiny.png") -> None:
    page.set_input_files("#predict-f-image", files=[{"name": name, "mimeType": "image/png", "buffer": PICTURE}])


def submit_predict(page: Any) -> None:
    page.click("#predict-form button[type=submit]")


def wait_done(page: Any, job: Any) -> None:
    """Until the job's list item says ``done``."""
    page.wait_for_function("el => el.dataset.status === 'done'", arg=job.element_handle(), timeout=30_000)


def start_training(page: Any, **args: str) -> Any:
    """Fill the train form with ``args``, submit, and answer the new job's list item."""
    before = page.locator("li.job").count()
    for name, value in args.items():
        page.fill(f"#train-f-{name}", value)
    page.click("#train-form button[type=submit]")
    page.wait_for_function(f"document.querySelectorAll('li.job').length > {before}")
    return page.locator("li.job").first


def test_predict_form_renders_every_argument(server, open_ui, shoot):
    srv = server()
    ui = open_ui(srv.url, csp=True)  # the page runs under its own strict policy
    page = ui.page
    assert page.inner_text("#model-title").startswith("modelaas-demo")
    assert "Built-in demo model" in page.inner_text("#about")

    # a required file, with what it accepts, marked required
    image = page.locator("#predict-f-image")
    assert image.get_attribute("type") == "file"
    assert image.get_attribute("accept") == "image/*"
    assert image.get_attribute("aria-required") == "true"
    assert field(page, "image").locator(".req").inner_text().lower() == "required"
    assert field(page, "image").locator(".help").inner_text() == "Any file; a picture works best."
    # only image is required
    assert page.locator("#predict-form .req").count() == 1

    # a choice as a select, its default selected
    label = page.locator("#predict-f-label")
    assert label.evaluate("el => el.tagName") == "SELECT"
    assert label.evaluate("el => Array.from(el.options).map(o => o.value)") == ["cat", "dog", "bird"]
    assert label.input_value() == "cat"

    # numbers with their range and default, and the range said in words
    top_k = page.locator("#predict-f-top_k")
    assert top_k.get_attribute("type") == "number" and top_k.input_value() == "3"
    assert (top_k.get_attribute("min"), top_k.get_attribute("max"), top_k.get_attribute("step")) == ("1", "3", "1")
    assert "Whole number from 1 to 3" in field(page, "top_k").inner_text()
    threshold = page.locator("#predict-f-threshold")
    assert (threshold.get_attribute("min"), threshold.get_attribute("max")) == ("0", "1")
    assert (threshold.get_attribute("step"), threshold.input_value()) == ("any", "0")

    # a bool as a checkbox, a list as a list of inputs with its default items
    invert = page.locator("#predict-f-invert")
    assert invert.get_attribute("type") == "checkbox" and not invert.is_checked()
    items = field(page, "weights").locator(".list-items input")
    assert [items.nth(i).input_value() for i in range(items.count())] == ["1", "1", "1"]
    field(page, "weights").get_by_role("button", name="Add an item to weights").click()
    assert items.count() == 4
    page.get_by_role("button", name="Remove item 4 of weights").click()
    assert items.count() == 3

    # the answer type from the model's media types
    accept = page.locator("#predict-f-accept")
    assert accept.evaluate("el => Array.from(el.options).map(o => o.value)") == ["application/json", "image/png"]
    assert accept.input_value() == "application/json"

    assert page.evaluate(UNLABELLED) == []
    assert page.get_by_label("top_k").count() == 1  # labels name their inputs
    assert page.get_by_role("tab", name="Train").is_visible()
    shoot(page, "ui-predict-form.png")


def test_prediction_with_a_file_shows_json_then_an_image(server, open_ui, shoot):
    srv = server()
    ui = open_ui(srv.url)
    page = ui.page
    attach_picture(page)
    preview = field(page, "image").locator(".preview img")
    preview.wait_for()
    assert preview.get_attribute("src").startswith("blob:")
    assert "tiny.png" in field(page, "image").locator(".preview").inner_text()

    page.select_option("#predict-f-label", "dog")
    submit_predict(page)
    page.wait_for_selector("#predict-result:not([hidden])")
    answer = json.loads(page.locator("#answer pre.json").text_content())
    assert answer["status"] == "OK"
    predictions = answer["predictions"]
    assert predictions["file"] == {"name": "tiny.png", "content_type": "image/png", "size": len(PICTURE)}
    assert predictions["sha256"] == hashlib.sha256(PICTURE).hexdigest()
    assert predictions["expected"]["label"] == "dog" and len(predictions["scores"]) == 3
    assert page.inner_text("#answer-status").startswith("200")
    assert page.locator("#answer a[download]").inner_text() == "Download JSON"
    shoot(page, "ui-predict-json.png")

    page.select_option("#predict-f-accept", "image/png")
    submit_predict(page)
    image = page.locator("#answer img.answer-media")
    image.wait_for()
    page.wait_for_function("() => document.querySelector('#answer img.answer-media').naturalWidth > 0")
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [160, 100]
    assert "image/png" in page.inner_text("#answer-status")
    assert page.locator("#answer pre.json").count() == 0
    with page.expect_download() as download:
        page.locator("#answer a[download]").click()
    assert Path(download.value.path()).read_bytes().startswith(b"\x89PNG")
    shoot(page, "ui-predict-image.png")


def test_invalid_arguments_show_their_messages_next_to_their_fields(server, open_ui, shoot):
    srv = server()
    ui = open_ui(srv.url)
    page = ui.page
    page.fill("#predict-f-top_k", "1000")
    submit_predict(page)  # no file either

    image_error = field(page, "image").locator(".field-error")
    image_error.wait_for()
    assert image_error.inner_text() == "Missing data for required field."
    image = page.locator("#predict-f-image")
    assert image.get_attribute("aria-invalid") == "true"
    assert "predict-f-image-error" in image.get_attribute("aria-describedby").split()
    assert "less than or equal to 3" in field(page, "top_k").locator(".field-error").inner_text()
    assert field(page, "label").locator(".field-error").is_hidden()
    message = page.inner_text("#predict-message")
    assert "image" in message and "top_k" in message
    assert page.evaluate("document.activeElement.id") == "predict-f-image"
    assert page.locator("#predict-result").is_hidden()
    shoot(page, "ui-errors.png")

    # messages about list items (nested maps, as marshmallow gives them) go next to the item;
    # keys that are no field go near the button
    nested = {"weights": {"1": ["Not a valid number."]}, "_schema": ["Give fewer weights than top_k."]}
    page.route("**/predict/**", lambda route: route.fulfill(status=422, json=nested), times=1)
    attach_picture(page)
    submit_predict(page)
    item_error = field(page, "weights").locator(".list-item").nth(1).locator(".field-error")
    item_error.wait_for()
    assert item_error.inner_text() == "Not a valid number."
    assert field(page, "weights").locator(".list-items input").nth(1).get_attribute("aria-invalid") == "true"
    assert field(page, "image").locator(".field-error").is_hidden()
    assert "Give fewer weights than top_k." in page.inner_text("#predict-message")

    # other errors: their message near the button
    page.route(
        "**/predict/**",
        lambda route: route.fulfill(status=500, json={"message": "The model broke."}),
        times=1,
    )
    submit_predict(page)
    page.wait_for_function("document.getElementById('predict-message').textContent.includes('The model broke.')")
    assert page.locator("#predict-form .field-error:visible").count() == 0

    # fixed: the messages go away and the answer comes
    page.fill("#predict-f-top_k", "2")
    submit_predict(page)
    page.wait_for_selector("#predict-result:not([hidden])")
    assert page.locator("#predict-form .field-error:visible").count() == 0


def test_training_shows_progress_to_completion_and_can_be_cancelled(server, open_ui, shoot):
    srv = server()
    ui = open_ui(srv.url, "/ui#modelaas-demo/train")
    page = ui.page
    assert page.get_by_role("tab", name="Train").get_attribute("aria-selected") == "true"
    assert page.locator("#train-f-epochs").input_value() == "5"
    assert page.locator("#train-f-epoch_seconds").input_value() == "0.5"
    assert page.evaluate(UNLABELLED) == []

    job = start_training(page, epochs="5", epoch_seconds="0.3")
    bar = job.get_by_role("progressbar")
    wait_done(page, job)
    assert bar.get_attribute("aria-valuenow") == "100"
    assert job.locator(".status").inner_text() == "done"
    chart = job.locator('figure.metric-chart[data-metric="loss"]')
    chart.wait_for()
    assert chart.get_attribute("data-points") == "5"
    assert chart.locator("svg polyline").count() == 1
    assert job.locator('figure.metric-chart[data-metric="epoch"]').get_attribute("data-points") == "5"
    page.wait_for_function("el => el.textContent.includes('epoch 5/5')", arg=job.locator("pre.log").element_handle())
    assert '"final_loss"' in job.locator(".job-result").inner_text()
    assert job.get_by_role("button", name="Delete").is_visible()
    assert job.get_by_role("button", name="Cancel").is_hidden()
    job.locator(".files").page.wait_for_function(
        "el => el.textContent.includes('no files')", arg=job.locator(".job-section p.help").last.element_handle()
    )
    shoot(page, "ui-training.png")

    long = start_training(page, epochs="100", epoch_seconds="1")
    page.wait_for_function("el => el.dataset.status === 'running'", arg=long.element_handle(), timeout=30_000)
    long.get_by_role("button", name="Cancel").click()
    page.wait_for_function("el => el.dataset.status === 'cancelled'", arg=long.element_handle(), timeout=30_000)
    assert long.locator(".status").inner_text() == "cancelled"
    assert long.get_by_role("button", name="Cancel").is_hidden()

    # the first one can be deleted (a second click confirms)
    job = page.locator("li.job").nth(1)
    job.get_by_role("button", name="Delete").click()
    job.get_by_role("button", name="Delete").click()
    page.wait_for_function("document.querySelectorAll('li.job').length === 1")


def test_phone_width_has_no_horizontal_scroll(server, open_ui, shoot):
    srv = server()
    ui = open_ui(srv.url, width=390, height=844)
    page = ui.page
    assert page.evaluate(NO_SIDE_SCROLL)
    attach_picture(page, "a-picture-with-a-rather-long-file-name-that-could-overflow.png")
    submit_predict(page)
    page.wait_for_selector("#predict-result:not([hidden])")
    assert page.evaluate(NO_SIDE_SCROLL)
    shoot(page, "ui-phone.png")
    page.get_by_role("tab", name="Train").click()
    job = start_training(page, epochs="2", epoch_seconds="0.1")
    wait_done(page, job)
    job.locator('figure.metric-chart[data-metric="loss"]').wait_for()
    assert page.evaluate(NO_SIDE_SCROLL)
    shoot(page, "ui-phone-training.png")


def test_keyboard_moves_between_tabs(server, open_ui):
    srv = server()
    page = open_ui(srv.url).page
    page.get_by_role("tab", name="Predict").focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-train"
    assert page.locator("#panel-train").is_visible() and page.locator("#panel-predict").is_hidden()
    assert page.url.endswith("#modelaas-demo/train")
    page.keyboard.press("ArrowLeft")
    assert page.get_by_role("tab", name="Predict").get_attribute("aria-selected") == "true"


def test_works_behind_a_base_path(server, open_ui):
    srv = server("--base-path", "/foo", ready=False)
    wait_ready(srv.url + "/foo/readyz")
    ui = open_ui(srv.url, "/foo/")  # a browser asking for the root gets the UI
    page = ui.page
    attach_picture(page)
    submit_predict(page)
    page.wait_for_selector("#predict-result:not([hidden])")
    assert "tiny.png" in page.inner_text("#answer")
    page.get_by_role("tab", name="Train").click()
    job = start_training(page, epochs="2", epoch_seconds="0.1")
    wait_done(page, job)
    job.locator('figure.metric-chart[data-metric="loss"]').wait_for()
    paths = [u[len(srv.url) :] for u in ui.requests if u.startswith("http")]
    assert paths and [p for p in paths if not p.startswith("/foo/")] == []
    assert any("/foo/v2/models/modelaas-demo/train/" in p and p.endswith("/events") for p in paths)


TOKEN = "ui-test-token-0123456789abcdef"


def give_token(page: Any, token: str) -> None:
    page.locator("#token-dialog").wait_for()
    page.get_by_role("textbox", name="Access token").fill(token)
    page.get_by_role("button", name="Use token").click()


def test_with_access_control_a_token_is_asked_for_and_sent(server, open_ui):
    srv = server(env={"MODELAAS_TOKENS": f"admin {TOKEN}"})
    ui = open_ui(srv.url, wait=False)
    page = ui.page
    give_token(page, "not-the-right-token-at-all")
    page.wait_for_function("document.getElementById('token-reason').textContent.includes('refused')")
    assert "not valid" in page.inner_text("#token-reason")
    give_token(page, TOKEN)
    page.wait_for_selector("#model-pick:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('modelaas-token')") == TOKEN
    assert page.get_by_role("button", name="Forget token").is_visible()

    attach_picture(page)
    submit_predict(page)
    page.wait_for_selector("#predict-result:not([hidden])")
    assert "tiny.png" in page.inner_text("#answer")

    page.get_by_role("tab", name="Train").click()
    job = start_training(page, epochs="2", epoch_seconds="0.2")
    wait_done(page, job)
    assert job.locator('figure.metric-chart[data-metric="loss"]').get_attribute("data-points") == "2"
    events = [u for u in ui.requests if "/events" in u]
    assert events and all(u.endswith(f"access_token={TOKEN}") for u in events)

    # a reload keeps the token for the tab's session
    page.reload()
    page.wait_for_selector("#model-pick:not([hidden])")
    assert page.locator("#token-dialog").is_hidden()


def test_without_the_events_route_jobs_are_polled(server, open_ui):
    """A server whose events route refuses the token: the job's record and log are polled."""
    srv = server()
    ui = open_ui(srv.url, "/ui#modelaas-demo/train", routes={"**/events*": lambda route: route.fulfill(status=401)})
    page = ui.page
    job = start_training(page, epochs="2", epoch_seconds="0.2")
    wait_done(page, job)
    page.wait_for_function("el => el.textContent.includes('epoch 2/2')", arg=job.locator("pre.log").element_handle())
    assert job.get_by_role("progressbar").get_attribute("aria-valuenow") == "100"
    assert job.locator('figure.metric-chart[data-metric="loss"]').count() == 1
    assert any("/logs?offset=" in u for u in ui.requests)


def test_train_only_model_lists_its_artefacts(server, open_ui):
    srv = server("--model", "trainer:Trainer", env={"MODELAAS_TOKENS": f"train {TOKEN}"})
    ui = open_ui(srv.url, wait=False)
    page = ui.page
    give_token(page, TOKEN)
    page.wait_for_selector("#model-pick:not([hidden])")
    assert page.get_by_role("tab", name="Predict").is_hidden()
    assert page.get_by_role("tab", name="Train").get_attribute("aria-selected") == "true"
    assert page.locator("#train-f-data").get_attribute("type") == "file"
    assert page.locator("#train-f-fail").get_attribute("type") == "checkbox"
    job = start_training(page, epochs="2")
    wait_done(page, job)
    links = job.locator(".files a")
    links.first.wait_for()
    assert sorted(links.all_inner_texts()) == ["sub/log.csv", "weights.txt"]
    with page.expect_download() as download:  # fetched with the token, saved from a blob
        job.get_by_role("link", name="weights.txt").click()
    assert Path(download.value.path()).read_text() == "w=1\n"
    assert download.value.suggested_filename == "weights.txt"

    page.check("#train-f-fail")
    job = start_training(page, epochs="1")
    page.wait_for_function("el => el.dataset.status === 'error'", arg=job.element_handle(), timeout=30_000)
    assert "training diverged" in job.locator(".job-message").inner_text()


def test_every_kind_of_argument_and_answer(server, open_ui, shoot):
    here = str(Path(__file__).parent)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
    srv = server("--model", "ui_models:Kinds", "--model-name", "kinds", env=env)

    def item_choices(route: Any) -> None:
        # the server does not describe the choices of list items yet: add them, as they would read
        doc = route.fetch().json()
        body = doc["paths"]["/v2/models/kinds/predict/"]["post"]["requestBody"]["content"]["multipart/form-data"]
        body["schema"]["properties"]["colours"]["items"]["enum"] = ["red", "green", "blue"]
        route.fulfill(json=doc)

    ui = open_ui(srv.url, routes={"**/openapi.json": item_choices})
    page = ui.page

    page.get_by_text("Metadata").click()
    metadata = page.locator("dl.metadata")
    assert "modelaas tests" in metadata.inner_text()
    assert metadata.get_by_role("link", name="https://example.org/kinds").count() == 1
    assert '"ui"' in metadata.inner_text()

    name = page.locator("#predict-f-name")
    assert (name.get_attribute("type"), name.get_attribute("maxlength")) == ("text", "20")
    assert name.get_attribute("aria-required") == "true"
    assert page.locator("#predict-f-sound").get_attribute("accept") == "audio/*"
    assert page.locator("#predict-f-when").get_attribute("type") == "date"
    assert page.locator("#predict-f-when").input_value() == "2024-01-31"
    assert page.locator("#predict-f-at").get_attribute("type") == "datetime-local"
    assert json.loads(page.locator("#predict-f-options").input_value()) == {"depth": 2}
    colours = field(page, "colours").get_by_role("checkbox")
    assert colours.count() == 3
    assert [colours.nth(i).is_checked() for i in range(3)] == [True, False, False]
    flag = page.locator("#predict-f-flag")
    assert flag.evaluate("el => Array.from(el.options).map(o => o.value)") == ["", "true", "false"]
    assert field(page, "counts").locator(".list-items input").count() == 0
    assert page.evaluate(UNLABELLED) == []

    page.fill("#predict-f-name", "Ada")
    page.fill("#predict-f-at", "2024-02-03T04:05:06")
    page.fill("#predict-f-options", '{"a": [1, 2]')  # broken JSON: said next to the field, nothing sent
    sent = len(ui.requests)
    submit_predict(page)
    assert "not valid JSON" in field(page, "options").locator(".field-error").inner_text()
    assert len(ui.requests) == sent
    page.fill("#predict-f-options", '{"a": [1, 2]}')
    field(page, "colours").get_by_label("green").check()
    flag.select_option("false")
    add = page.get_by_role("button", name="Add an item to counts")
    add.click()
    page.keyboard.type("4")
    add.click()
    page.keyboard.type("5")
    page.set_input_files(
        "#predict-f-sound", files=[{"name": "hush.wav", "mimeType": "audio/wav", "buffer": ui_models.wav()}]
    )
    field(page, "sound").locator(".preview audio").wait_for(state="attached")

    submit_predict(page)
    page.wait_for_selector("#predict-result:not([hidden])")
    answer = json.loads(page.locator("#answer pre.json").text_content())
    assert answer["predictions"]["args"] == {
        "name": "Ada",
        "when": "2024-01-31",
        "at": "2024-02-03T04:05:06",
        "options": {"a": [1, 2]},
        "colours": ["red", "green"],
        "flag": False,
        "counts": [4, 5],
        "sound": "hush.wav",
    }
    assert answer["predictions"]["picture"] == ui_models.PICTURE_URI
    picture = page.locator("#answer .answer-gallery img")  # a data URI is shown as what it is
    page.wait_for_function("() => document.querySelector('#answer .answer-gallery img').naturalWidth === 8")
    assert picture.get_attribute("src") == ui_models.PICTURE_URI

    page.select_option("#predict-f-accept", "audio/wav")
    submit_predict(page)
    audio = page.locator("#answer audio.answer-media")
    audio.wait_for(state="attached")
    assert audio.get_attribute("src").startswith("blob:") and audio.get_attribute("controls") is not None
    page.wait_for_function("() => document.querySelector('#answer audio').duration > 0.1")

    page.select_option("#predict-f-accept", "text/csv")
    submit_predict(page)
    page.wait_for_selector("#answer pre.text-answer")
    assert page.inner_text("#answer pre.text-answer").strip() == "name,colours\nAda,red green"

    page.select_option("#predict-f-accept", "application/zip")
    submit_predict(page)
    link = page.get_by_role("link", name="Download kinds-answer.zip")
    with page.expect_download() as download:
        link.click()
    assert Path(download.value.path()).read_bytes() == ui_models.EMPTY_ZIP
    assert page.evaluate(NO_SIDE_SCROLL)


def test_several_models_are_picked_from_a_list(tmp_path, open_ui):
    from modelaas.model.adapters import TypedAdapter
    from modelaas.model.demo import DemoModel
    from modelaas.runtime import Runtime
    from modelaas.settings import Settings
    from modelaas.web.app import create_app

    settings = Settings(data_dir=tmp_path / "data", train_endpoint=False)
    adapters = [TypedAdapter("modelaas-demo", DemoModel()), TypedAdapter("kinds", ui_models.Kinds())]
    with app_server(create_app(settings, runtime=Runtime(settings, adapters))) as url:
        ui = open_ui(url)
        page = ui.page
        select = page.get_by_label("Model", exact=True)
        assert select.evaluate("el => Array.from(el.options).map(o => o.value)") == ["modelaas-demo", "kinds"]
        assert page.locator("#predict-f-image").count() == 1
        assert page.get_by_role("tab", name="Train").is_hidden()  # --notrain-endpoint
        select.select_option("kinds")
        page.wait_for_selector("#predict-f-name")
        assert page.url.endswith("#kinds/predict")
        assert page.inner_text("#model-title") == "kinds"
        assert page.locator("#predict-f-image").count() == 0
        page.fill("#predict-f-name", "Bo")
        submit_predict(page)
        page.wait_for_selector("#predict-result:not([hidden])")
        assert '"Bo"' in page.inner_text("#answer")
        page.go_back()  # the address names the model: history works
        page.wait_for_selector("#predict-f-image")
        assert select.input_value() == "modelaas-demo"
