"""The Versions tab in a real browser, against a real server with registered versions:
the list, the metrics chart, and a roll back through the page that the serving state follows."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import wait_for

pytestmark = pytest.mark.slow

MODEL = "tuned"
BASE = f"/v2/models/{MODEL}"
HERE = str(Path(__file__).parent)
TOKEN = "versions-tab-token-0123456789abcdef"


def serve_tuned(server: Any, env: dict[str, str] | None = None) -> Any:
    path = {"PYTHONPATH": os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")]))}
    return server("--model", "ui_models:Tuned", "--model-name", MODEL, env={**path, **(env or {})})


def trained_version(url: str, rate: str, description: str) -> dict[str, Any]:
    """Train with ``rate``, then register the finished training as a version."""
    job = httpx.post(f"{url}{BASE}/train/", data={"rate": rate}, timeout=30).json()
    wait_for(
        lambda: httpx.get(f"{url}{BASE}/train/{job['uuid']}", timeout=10).json()["status"] == "done",
        timeout=60,
        what="the training to finish",
    )
    answer = httpx.post(f"{url}{BASE}/versions/", json={"job": job["uuid"], "description": description}, timeout=30)
    assert answer.status_code == 201, answer.text
    record: dict[str, Any] = answer.json()
    return record


def test_versions_tab_lists_versions_charts_their_metrics_and_rolls_back(server, open_ui, shoot):
    srv = serve_tuned(server)
    first = trained_version(srv.url, "0.2", "first try")
    second = trained_version(srv.url, "0.6", "more rate")
    answer = httpx.post(f"{srv.url}{BASE}/versions/{second['version']}/activate", timeout=30)
    assert answer.status_code == 200, answer.text

    ui = open_ui(srv.url, f"/ui#{MODEL}/versions", csp=True)
    page = ui.page
    page.wait_for_selector("table.versions")
    rows = page.locator("tr.version")
    assert [rows.nth(i).get_attribute("data-version") for i in range(rows.count())] == [
        str(second["version"]),
        str(first["version"]),
    ]
    active = page.locator('tr.version[data-active="true"]')
    assert active.get_attribute("data-version") == str(second["version"])
    assert active.locator(".badge.active").inner_text() == "active"
    older = page.locator(f'tr.version[data-version="{first["version"]}"]')
    assert "first try" in older.inner_text()
    assert older.locator("a.job-link").get_attribute("href").endswith(f"/train/{first['source']['job']}")

    # one series per metric, one bar per version in each
    metrics = sorted({k for v in (first, second) for k, x in v["metrics"].items() if isinstance(x, (int, float))})
    assert metrics == ["accuracy", "loss"]
    series = page.eval_on_selector_all(
        ".versions-metrics g.series", "els => els.map(e => [e.dataset.metric, e.querySelectorAll('rect').length])"
    )
    assert sorted(series) == [[m, 2] for m in metrics]

    # roll back: asked first, then done; the serving state follows
    button = older.locator('button[data-action="activate"]')
    assert button.inner_text() == "Roll back"
    button.click()
    assert older.locator(".version-confirm").inner_text() == f"Roll back to version {first['version']}?"
    shoot(page, "ui-versions.png")
    older.locator('button[data-action="confirm"]').click()
    page.wait_for_selector(f'tr.version[data-version="{first["version"]}"][data-active="true"]')
    assert f"Version {first['version']} is active" in page.inner_text("#versions-message")
    state = httpx.get(f"{srv.url}{BASE}/versions/", timeout=10).json()
    assert state["active"] == first["version"]


def test_versions_tab_shows_a_refused_activation(server, open_ui):
    srv = serve_tuned(server, {"MODELAAS_TOKENS": f"train,predict {TOKEN}"})
    headers = {"Authorization": f"Bearer {TOKEN}"}
    job = httpx.post(f"{srv.url}{BASE}/train/", data={"rate": "0.5"}, headers=headers, timeout=30).json()
    wait_for(
        lambda: (
            httpx.get(f"{srv.url}{BASE}/train/{job['uuid']}", headers=headers, timeout=10).json()["status"] == "done"
        ),
        timeout=60,
        what="the training to finish",
    )
    made = httpx.post(f"{srv.url}{BASE}/versions/", json={"job": job["uuid"]}, headers=headers, timeout=30)
    assert made.status_code == 201, made.text

    ui = open_ui(srv.url, f"/ui#{MODEL}/versions", wait=False)
    page = ui.page
    page.wait_for_selector("#token-dialog[open]")
    page.fill("#token-input", TOKEN)
    page.click("#token-dialog button[type=submit]")
    page.wait_for_selector("table.versions")
    page.click('button[data-action="activate"]')
    page.click('button[data-action="confirm"]')
    message = page.locator("#versions-message.error")
    message.wait_for()
    assert "could not be activated" in message.inner_text() and "HTTP 403" in message.inner_text()
    assert httpx.get(f"{srv.url}{BASE}/versions/", headers=headers, timeout=10).json()["active"] is None
