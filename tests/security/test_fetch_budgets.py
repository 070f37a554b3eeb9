"""URL inputs have per-request budgets (count, bytes, time) and wait in the predict queue.

Finding: fetching happened before the predict queue and timeout, with limits per URL: one
request ran 40 s under --predict-timeout 2, a 1.3 KB request spooled 1.6 GB, and 200
fetches ran at once under --predict-queue 4.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from modelaas.settings import Settings

MANY = "/v2/models/url-inputs/predict/"
KIB = 1024


def spool_clean(settings: Settings) -> bool:
    root = settings.upload_dir
    return not root.exists() or [p for p in root.rglob("*") if p.is_file() or p.name.startswith("fetch-")] == []


def test_too_many_urls_in_one_request_are_refused_before_any_fetch(
    origin: Any, make_client: Callable[..., TestClient], settings: Settings
) -> None:
    client = make_client("url_inputs:Many", fetch_allow_networks=origin.ALLOW, fetch_max_urls=4)
    r = client.post(MANY, data={"docs": [origin.url(f"/img/{i}.png") for i in range(4)]})
    assert r.status_code == 200, r.text
    origin.reset()
    r = client.post(MANY, data={"docs": [origin.url(f"/img/{i}.png") for i in range(4)], "extra": origin.url("/text")})
    assert r.status_code == 400, r.text
    assert "5 URL inputs" in r.json()["message"] and "--fetch-max-urls" in r.json()["message"]
    assert origin.connections == 0
    assert spool_clean(settings)


def test_the_bytes_of_one_requests_urls_count_together(
    origin: Any, make_client: Callable[..., TestClient], settings: Settings
) -> None:
    client = make_client("url_inputs:Many", fetch_allow_networks=origin.ALLOW, fetch_max_bytes=1000 * KIB)
    r = client.post(MANY, data={"docs": [origin.url("/bytes/400000")] * 2})
    assert r.status_code == 200, r.text
    r = client.post(MANY, data={"docs": [origin.url("/bytes/400000")] * 3})  # each under the cap, not together
    assert r.status_code == 413, r.text
    message = r.json()["message"]
    assert "Argument 'docs'" in message and "together" in message and "--fetch-max-bytes" in message
    assert spool_clean(settings)


def test_the_urls_of_one_request_share_one_deadline(
    origin: Any, make_client: Callable[..., TestClient], settings: Settings
) -> None:
    client = make_client("url_inputs:Many", fetch_allow_networks=origin.ALLOW, fetch_timeout=2.0)
    started = time.monotonic()
    r = client.post(MANY, data={"docs": [origin.url("/slow/0.8")] * 4})  # each in time, not together
    took = time.monotonic() - started
    assert r.status_code == 502, r.text
    assert "took longer than the limit of 2 s" in r.json()["message"] and "--fetch-timeout" in r.json()["message"]
    assert took < 3.5
    assert spool_clean(settings)


def test_the_predict_timeout_bounds_fetching_too(
    origin: Any, make_client: Callable[..., TestClient], settings: Settings
) -> None:
    client = make_client("url_inputs:Many", fetch_allow_networks=origin.ALLOW, fetch_timeout=30.0, predict_timeout=1.0)
    started = time.monotonic()
    r = client.post(MANY, data={"docs": [origin.url("/drip")]})
    took = time.monotonic() - started
    assert r.status_code == 502, r.text
    assert "took longer than the limit of 1 s" in r.json()["message"] and "--predict-timeout" in r.json()["message"]
    assert took < 3
    assert spool_clean(settings)


@pytest.mark.slow
def test_fetching_requests_wait_in_the_predict_queue(origin: Any, server: Any) -> None:
    srv = server(
        "--model", "url_inputs:Many", "--fetch-allow-networks", origin.ALLOW,
        "--predict-concurrency", "1", "--predict-queue", "2",
    )  # fmt: skip

    def post(_: int) -> int:
        return httpx.post(srv.url + MANY, data={"docs": origin.url("/slow/1.5")}, timeout=30).status_code

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(post, range(12)))
    print(f"\n12 requests with a slow URL at once: {sorted(codes)}; fetches at once: {origin.most_busy}")
    assert 200 in codes and 503 in codes and set(codes) <= {200, 503}
    assert origin.most_busy <= 2
