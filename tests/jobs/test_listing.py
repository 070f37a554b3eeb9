"""The job list in pages: all of it by default (DEEPaaS), or limit/offset with the total."""

from __future__ import annotations

from typing import Any

import pytest

from modelaas.jobs.records import Job, new_job_id

URL = "/v2/models/trainer/train/"


@pytest.fixture
def client(make_client: Any) -> Any:
    c = make_client("trainer:Trainer")
    store = c.app.state.modelaas.jobs.store
    for i in range(25):  # another server's queued jobs: listed here, never run here
        store.create(Job(id=new_job_id(), model="trainer", owner="elsewhere", args={"n": i}))
    return c


def test_the_list_comes_whole_or_in_pages(client: Any) -> None:
    """Finding: the job list had no pages (one answer was 90 MB)."""
    whole = client.get(URL)
    assert whole.status_code == 200 and len(whole.json()) == 25 and whole.headers["X-Total-Count"] == "25"
    first = client.get(URL, params={"limit": "10"})
    assert [r["args"]["n"] for r in first.json()] == list(range(10))
    assert first.headers["X-Total-Count"] == "25"
    assert first.headers["Link"] == f'<{URL}?limit=10&offset=10>; rel="next"'
    last = client.get(URL, params={"limit": "10", "offset": "20"})
    assert [r["args"]["n"] for r in last.json()] == list(range(20, 25)) and "Link" not in last.headers
    for bad in ({"limit": "0"}, {"limit": "10001"}, {"limit": "x"}, {"offset": "-1"}):
        r = client.get(URL, params=bad)
        assert r.status_code == 400 and "request_id" in r.json(), (bad, r.text)


def test_the_python_client_reads_every_page() -> None:
    import httpx

    from modelaas.client import Client

    records = [{"uuid": f"j{i}", "status": "queued", "args": {}, "date": "x"} for i in range(7)]
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url.query, "ascii"))
        limit, offset = int(request.url.params["limit"]), int(request.url.params["offset"])
        return httpx.Response(200, json=records[offset : offset + limit], headers={"X-Total-Count": "7"})

    with Client("http://modelaas.test", transport=httpx.MockTransport(handler)) as client:
        jobs = client.jobs("m", page=3)
    assert [j.id for j in jobs] == [f"j{i}" for i in range(7)]
    assert asked == ["limit=3&offset=0", "limit=3&offset=3", "limit=3&offset=6"]
