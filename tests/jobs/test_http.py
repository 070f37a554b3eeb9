"""The train routes over HTTP, with real training processes: events (SSE), logs, files,
uploads, the queue limit, --notrain-endpoint, the v1 route and DELETE."""

from __future__ import annotations

import json
import os
import time
from typing import Any
from urllib.parse import unquote

import anyio
import pytest
from starlette.testclient import TestClient

import support
from modelaas.settings import Settings
from support import spool_files, wait_status

URL = "/v2/models/trainer/train/"
TIMEOUT = 30.0
CSV = b"a,b\n1,2\n3,4\n"
LONG = {"epochs": "1000", "seconds": "0.05"}
"""A training that runs until cancelled (it watches ``context.cancelled``)."""


# ----------------------------------------------------------------------------- helpers
def wait_until(check: Any, what: str, timeout: float = TIMEOUT) -> None:
    support.wait_for(check, timeout=timeout, what=what)


def wait_reaped(client: TestClient, job_id: str) -> None:
    """Until the app's scheduler has seen the job's process end (everything it wrote is stored)."""
    scheduler = client.app.state.modelaas.trainings.host.scheduler  # type: ignore[attr-defined]
    wait_until(lambda: not scheduler.tracks(job_id), f"the process of job {job_id} to end")


def submit(client: TestClient, data: dict[str, str] | None = None, url: str = URL, **kwargs: Any) -> dict[str, Any]:
    answer = client.post(url, data=data or {}, **kwargs)
    assert answer.status_code == 200, answer.text
    record: dict[str, Any] = answer.json()
    return record


def parse_sse(lines: list[str]) -> list[dict[str, str]]:
    """Server-Sent Events from the stream's lines: each as its fields (comments dropped)."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in [*lines, ""]:
        if line == "":
            if current:
                events.append(current)
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            current[key] = value[1:] if value.startswith(" ") else value
    return events


def read_events(
    client: TestClient, url: str, *, headers: dict[str, str] | None = None, stop_after: int | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """The events of a stream (``stop_after`` of them, then hang up); and whether it ended by itself.

    Each event is ``{"id": int, "event": str, "data": parsed JSON}``.
    """
    events: list[dict[str, Any]] = []
    pending: list[str] = []
    with client.stream("GET", url, headers=headers) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            pending.append(line)
            if line != "":
                continue
            for fields in parse_sse(pending):
                if "event" in fields:
                    events.append(
                        {"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])}
                    )
                else:
                    assert set(fields) == {"retry"}, fields
            pending = []
            if stop_after is not None and len(events) >= stop_after:
                return events, False
    assert not [f for f in parse_sse(pending) if "event" in f], "an event without its blank line"
    return events, True


def raw_get(client: TestClient, raw_path: str) -> tuple[int, bytes]:
    """GET a path sent exactly as written (httpx would resolve ``..`` segments first), as a
    server hands it to the app: ``path`` percent-decoded, ``raw_path`` as sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode("ascii"),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    assert client.portal is not None
    try:
        client.portal.call(client.app, scope, receive, send)
    except Exception:
        pass
    start = next(m for m in sent if m["type"] == "http.response.start")
    return int(start["status"]), b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.fixture
def client(make_client: Any) -> TestClient:
    c: TestClient = make_client("trainer:Trainer")
    return c


# ------------------------------------------------------------------------------ events
def test_events_follow_a_training_in_order_and_end_by_themselves(client: TestClient) -> None:
    job = submit(client, {"epochs": "3", "seconds": "0.4"})["uuid"]
    events, ended = read_events(client, f"{URL}{job}/events")
    assert ended
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))
    assert {e["event"] for e in events} == {"state", "progress", "log"}
    states = [e["data"]["status"] for e in events if e["event"] == "state"]
    assert states in (["queued", "running", "done"], ["running", "done"])
    assert events[-1] == {"id": ids[-1], "event": "state", "data": {"status": "done"}}
    running = next(i for i, e in enumerate(events) if e["data"].get("status") == "running")
    assert all(e["event"] == "state" for e in events[:running])  # nothing happens before it runs
    progress = [e["data"]["progress"] for e in events if e["event"] == "progress"]
    assert len(progress) >= 2 and progress == sorted(set(progress)) and progress[-1] == 1.0
    assert all(set(e["data"]) == {"progress", "metrics"} for e in events if e["event"] == "progress")
    lines = [e["data"]["line"] for e in events if e["event"] == "log"]
    assert "starting" in lines  # printed first thing; stored well before the training ends
    wait_reaped(client, job)
    assert lines == client.get(f"{URL}{job}/logs").text.splitlines()[: len(lines)]  # in order, each once
    # a finished job replays the same history
    assert read_events(client, f"{URL}{job}/events") == (events, True)


def test_events_resume_after_last_event_id_each_once(client: TestClient) -> None:
    job = submit(client, {"epochs": "5", "seconds": "0.2"})["uuid"]
    url = f"{URL}{job}/events"
    first, ended = read_events(client, url, stop_after=3)  # then hang up, while it runs
    assert not ended and len(first) == 3
    last_seen = str(first[-1]["id"])
    rest, ended = read_events(client, url, headers={"Last-Event-ID": last_seen})
    assert ended and rest and rest[-1]["data"] == {"status": "done"}
    full, _ = read_events(client, url)
    assert [e["id"] for e in first + rest] == [e["id"] for e in full]  # none missing, none repeated
    assert first + rest == full
    for k in (1, 4, len(full) - 1):
        after = str(full[k - 1]["id"])
        assert read_events(client, f"{url}?after={after}") == (full[k:], True)
        assert read_events(client, url, headers={"Last-Event-ID": after}) == (full[k:], True)
    # the header wins over ?after=
    assert read_events(client, f"{url}?after=0", headers={"Last-Event-ID": last_seen}) == (rest, True)


def test_invalid_event_ids_answer_400(client: TestClient) -> None:
    job = submit(client, {"epochs": "1"})["uuid"]
    url = f"{URL}{job}/events"
    for query, headers in [(f"?after={bad}", {}) for bad in ("x", "-1", "", "\u0663")] + [
        ("", {"Last-Event-ID": bad}) for bad in ("abc", "-1", "1.5", "1e3", "5x")
    ]:
        answer = client.get(url + query, headers=headers)
        assert answer.status_code == 400, (query, headers)
        assert answer.headers["content-type"] == "application/json"
        assert "whole number" in answer.json()["message"]
    assert client.get(f"{URL}nope/events").status_code == 404


def test_events_carry_every_log_line_before_the_final_state(client: TestClient) -> None:
    job = submit(client, {"epochs": "2"})["uuid"]
    events, _ = read_events(client, f"{URL}{job}/events")
    wait_reaped(client, job)
    log = client.get(f"{URL}{job}/logs").text.splitlines()
    assert [e["data"]["line"] for e in events if e["event"] == "log"] == log
    # nothing comes after the final state: a client resuming from it gets no event
    assert read_events(client, f"{URL}{job}/events", headers={"Last-Event-ID": str(events[-1]["id"])}) == ([], True)


# -------------------------------------------------------------------------------- logs
def test_logs_follow_with_offsets(client: TestClient) -> None:
    job = submit(client, {"epochs": "6", "seconds": "0.15"})["uuid"]
    url = f"{URL}{job}/logs"
    chunks: list[str] = []
    offset = 0
    status = "queued"
    deadline = time.monotonic() + TIMEOUT
    while status in ("queued", "running") and time.monotonic() < deadline:
        answer = client.get(url, params={"offset": offset})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
        status = answer.headers["X-Job-Status"]
        lines = answer.text.splitlines()
        assert int(answer.headers["X-Next-Offset"]) == offset + len(lines)
        chunks += lines
        offset += len(lines)
        time.sleep(0.1)
    assert status == "done"
    wait_reaped(client, job)
    answer = client.get(url, params={"offset": offset})  # whatever came after: only new lines
    chunks += answer.text.splitlines()
    offset = int(answer.headers["X-Next-Offset"])
    whole = client.get(url)
    assert chunks == whole.text.splitlines() and whole.text.endswith("\n")
    assert int(whole.headers["X-Next-Offset"]) == offset == len(chunks) and whole.headers["X-Job-Status"] == "done"
    assert "starting" in chunks and len(chunks) > 6
    middle = client.get(url, params={"offset": 2})
    assert middle.text.splitlines() == chunks[2:] and middle.headers["X-Next-Offset"] == str(offset)
    for past in (offset, offset + 10):  # at or past the end: nothing, and come back there
        answer = client.get(url, params={"offset": past})
        assert (answer.status_code, answer.text, answer.headers["X-Next-Offset"]) == (200, "", str(past))


def test_bad_log_offsets_answer_400(client: TestClient) -> None:
    job = submit(client, {"epochs": "1"})["uuid"]
    for offset in ("-1", "x", "1.5", "", " 2", "1_0", "\u0663"):
        answer = client.get(f"{URL}{job}/logs", params={"offset": offset})
        assert answer.status_code == 400, (offset, answer.text)
        assert "offset" in answer.json()["message"]
    assert client.get(f"{URL}nope/logs").status_code == 404


# ------------------------------------------------------------------------------- files
def test_files_listing_download_and_no_way_out(client: TestClient, settings: Settings) -> None:
    job = submit(client, {"epochs": "1"})["uuid"]
    wait_status(client, URL + job, {"done"})
    job_dir = settings.jobs_dir / job
    out = job_dir / "output"
    (job_dir / "secret.txt").write_text("SECRET-OUTSIDE")  # in the job's folder, not in its output
    (out / "sub" / "a b#1?.txt").write_text("odd name")
    os.symlink("/etc/passwd", out / "link")
    os.symlink("/etc", out / "etc")
    os.symlink(job_dir / "secret.txt", out / "secret-link")

    listing = client.get(f"{URL}{job}/files")
    assert listing.status_code == 200
    assert [(f["path"], f["size"]) for f in listing.json()] == [
        ("sub/a b#1?.txt", 8),
        ("sub/log.csv", 11),
        ("weights.txt", 4),
    ]  # symbolic links are not listed
    for item in listing.json():
        answer = client.get(item["href"])
        assert answer.status_code == 200, item
        assert answer.content == (out / item["path"]).read_bytes()
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["content-disposition"].startswith("attachment")
    assert listing.json()[0]["href"] == f"{URL}{job}/files/sub/a%20b%231%3F.txt"

    base = f"{URL}{job}/files/"
    for attack in (
        "../secret.txt",
        "../../../../../../etc/passwd",
        "..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "..%2Fsecret.txt",
        "%2e%2e/secret.txt",
        "%2E%2E%2Fsecret.txt",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "sub/../../secret.txt",
        "sub/../../../jobs.sqlite3",
        "link",
        "etc/passwd",
        "secret-link",
        "weights.txt%00",
        "%00",
        "..",
        "",
        "sub",
    ):
        status, body = raw_get(client, base + attack)
        assert status == 404, (attack, status, body)
        assert json.loads(body)["message"], attack
        assert b"SECRET" not in body and b"root:" not in body, attack
    assert raw_get(client, base + "sub/../weights.txt") == (200, b"w=1\n")  # inside is fine
    assert client.get(f"{URL}nope/files").status_code == 404
    assert client.get(f"{URL}nope/files/weights.txt").status_code == 404


# ------------------------------------------------------------------- files as arguments
def test_training_reads_an_uploaded_file_never_shows_its_path_and_deletes_it(
    client: TestClient, settings: Settings
) -> None:
    record = submit(client, {"epochs": "1"}, files={"data": ("d.csv", CSV, "text/csv")})
    info = {"name": "data", "content_type": "text/csv", "original_filename": "d.csv"}
    assert record["args"]["data"] == info and record["args"]["epochs"] == 1
    assert spool_files(settings.upload_dir) == []  # moved out of the request spool
    inputs = settings.jobs_dir / record["uuid"] / "inputs"
    ended = wait_status(client, URL + record["uuid"], {"done", "error"})
    assert ended["status"] == "done", ended.get("message")
    assert ended["result"]["output"]["size"] == len(CSV)  # the model read the file
    for shown in (record, ended, client.get(URL).json()):
        assert str(settings.data_dir) not in json.dumps(shown)  # never a server path
    wait_reaped(client, record["uuid"])
    assert not inputs.exists() or not any(inputs.rglob("*"))  # the kept upload is gone
    assert spool_files(settings.upload_dir) == []


def test_training_reads_a_list_of_files(make_client: Any, settings: Settings) -> None:
    client = make_client("multi_file_trainer:MultiFileTrainer")
    url = "/v2/models/multi-file-trainer/train/"
    files = [("files", ("a.txt", b"hello", "text/plain")), ("files", ("b.csv", CSV, "text/csv"))]
    record = submit(client, {"tag": "t"}, url=url, files=files)
    assert record["args"]["files"] == [
        {"name": "files", "content_type": "text/plain", "original_filename": "a.txt"},
        {"name": "files", "content_type": "text/csv", "original_filename": "b.csv"},
    ]
    assert spool_files(settings.upload_dir) == []
    done = wait_status(client, url + record["uuid"], {"done", "error"})
    assert done["status"] == "done", done.get("message")
    assert done["result"]["output"] == {
        "tag": "t",
        "files": [
            {"name": "a.txt", "size": 5, "head": "hello"},
            {"name": "b.csv", "size": len(CSV), "head": CSV.decode()},
        ],
    }
    wait_reaped(client, record["uuid"])
    assert not any((settings.jobs_dir / record["uuid"]).glob("inputs/*"))
    answer = client.post(url, data={"files": "not a file"})
    assert answer.status_code == 422 and "files" in answer.json()


# ---------------------------------------------------------------------- limits, switches
def test_full_queue_answers_429_with_retry_after(make_client: Any, settings: Settings) -> None:
    client = make_client("trainer:Trainer", train_queue=1, train_workers=1)
    running = submit(client, LONG)["uuid"]
    wait_status(client, URL + running, {"running"})
    queued = submit(client, {"epochs": "1"})
    assert queued["status"] == "queued"
    answer = client.post(URL, data={"epochs": "1"}, files={"data": ("d.csv", CSV, "text/csv")})
    assert answer.status_code == 429
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["message"].startswith("1 training is already waiting on this server (--train-queue 1)")
    assert [j["uuid"] for j in client.get(URL).json()] == [running, queued["uuid"]]
    assert spool_files(settings.upload_dir) == []
    for job in (queued["uuid"], running):
        assert client.delete(URL + job).json()["status"] == "cancelled"


def test_notrain_endpoint_has_no_train_routes(make_client: Any) -> None:
    client = make_client("trainer:Trainer", train_endpoint=False)
    for method, path in (
        ("POST", URL),
        ("POST", URL.rstrip("/")),
        ("GET", URL),
        ("GET", URL + "abc"),
        ("DELETE", URL + "abc"),
        ("GET", URL + "abc/logs"),
        ("GET", URL + "abc/events"),
        ("GET", URL + "abc/files"),
        ("GET", URL + "abc/files/weights.txt"),
    ):
        answer = client.request(method, path)
        assert answer.status_code == 404, (method, path)
        assert answer.json()["message"]
    paths = client.get("/openapi.json").json()["paths"]
    assert paths and not [p for p in paths if "train" in p.split("/")]
    v1 = make_client("v1_seed", train_endpoint=False)
    assert v1.put("/v1/models/v1-seed/train", data={"epochs": "1"}).status_code == 404
    assert v1.get("/v1/models/v1-seed").status_code == 200


# ------------------------------------------------------------------------------ v1 route
def test_v1_put_train_answers_the_output_and_args_are_strings(make_client: Any) -> None:
    client = make_client("v1_seed")
    answer = client.put("/v1/models/v1-seed/train", data={"epochs": "3", "lr_step_schedule": "[1, 2]"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"lr_step_schedule": [1, 2], "use_early_stopping": False, "epochs": 3}
    answer = client.put("/v1/models/v1-seed/train", json={"epochs": 5, "use_early_stopping": True})
    assert answer.json() == {"lr_step_schedule": [0.7, 0.9], "use_early_stopping": True, "epochs": 5}
    records = client.get("/v2/models/v1-seed/train/").json()
    assert [r["args"] for r in records] == [
        {"lr_step_schedule": "[1, 2]", "use_early_stopping": "false", "epochs": "3"},
        {"lr_step_schedule": "[0.7, 0.9]", "use_early_stopping": "true", "epochs": "5"},
    ]
    assert [r["status"] for r in records] == ["done", "done"]
    failed = client.put("/v1/models/v1-seed/train", data={"epochs": "not json"})
    assert failed.status_code == 500 and "Expecting value" in failed.json()["message"]
    missing = client.put("/v1/models/v1-seed/train")
    assert missing.status_code == 422 and missing.json() == {"epochs": ["Missing data for required field."]}
    # the v2 route trains a v1 model too, answering the record at once
    record = submit(client, {"epochs": "2"}, url="/v2/models/v1-seed/train/")
    done = wait_status(client, "/v2/models/v1-seed/train/" + record["uuid"], {"done"})
    assert done["result"]["output"]["epochs"] == 2


def test_v1_route_trains_v1_models_only(make_client: Any) -> None:
    client = make_client("v1_seed", "trainer:Trainer")
    answer = client.put("/v1/models/trainer/train", data={"epochs": "1"})
    assert answer.status_code == 404 and "v1-seed" in answer.json()["message"]
    assert client.get(URL).json() == []  # nothing was queued


# ---------------------------------------------------------------------------- delete
def test_delete_cancels_a_running_job_then_removes_it(client: TestClient, settings: Settings) -> None:
    job = submit(client, LONG)["uuid"]
    wait_status(client, URL + job, {"running"})
    answer = client.delete(URL + job)
    assert answer.status_code == 200
    record = answer.json()
    assert record["status"] == "cancelled" and record["cancel_requested"] is True
    assert record["message"] and record["result"]["finish_date"]
    assert [r["uuid"] for r in client.get(URL).json()] == [job]
    assert client.get(URL + job).json()["status"] == "cancelled"
    events, ended = read_events(client, f"{URL}{job}/events")
    assert ended and events[-1]["data"]["status"] == "cancelled"
    again = client.delete(URL + job)
    assert again.status_code == 200 and again.json()["uuid"] == job
    assert client.get(URL + job).status_code == 404
    assert client.delete(URL + job).status_code == 404
    assert client.get(URL).json() == []
    assert not (settings.jobs_dir / job).exists()


def test_model_without_train_answers_501_on_train_routes(make_client: Any) -> None:
    client = make_client("v2_basic")
    name = client.get("/v2/models/").json()["models"][0]["id"]
    for method, suffix in (("POST", ""), ("GET", ""), ("GET", "abc"), ("GET", "abc/logs"), ("GET", "abc/files")):
        answer = client.request(method, f"/v2/models/{name}/train/{suffix}")
        assert answer.status_code == 501, (method, suffix, answer.text)
        assert "does not implement train" in answer.json()["message"]
