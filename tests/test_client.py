"""modelaas.Client against real server processes; SSE reconnection and error mapping
against httpx.MockTransport (a stand-in for the network)."""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from modelaas.client import Client
from modelaas.client.jobs import MAX_RECONNECTS, Event, Job, SSEParser
from modelaas.errors import (
    BadRequest,
    ClientError,
    Conflict,
    JobFailed,
    JobNotFound,
    ModelaasError,
    ModelError,
    ModelNotFound,
    NotAcceptable,
    NotFound,
    NotImplementedByModel,
    Overloaded,
    PayloadTooLarge,
    PredictTimeout,
    ServerUnreachable,
    TooManyJobs,
    ValidationError,
)

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\nnot-really"  # what tests/fixtures/models/v2_accept.py answers


@pytest.fixture
def connect(server: Callable[..., Any]) -> Iterator[Callable[..., Client]]:
    """``connect("--model", "x")``: a real server and a Client on it."""
    clients: list[Client] = []

    def make(*args: str) -> Client:
        client = Client(server(*args).url, timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def wait_status(job: Job, statuses: set[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while job.refresh()["status"] not in statuses:
        assert time.monotonic() < deadline, job.record
        time.sleep(0.05)


# -------------------------------------------------------------------- models and predict
def test_models_predict_and_validation(connect):
    client = connect("--model", "v2_basic")
    assert [m["name"] for m in client.models()] == ["v2-basic"]
    assert client.model("v2-basic")["Version"] == "1.0"
    answer = client.predict(
        "v2-basic", count=2, values=[0.1, 0.2], options={"a": 1}, flag=True, text=None, **{"renamed-arg": "y"}
    )
    assert answer["status"] == "OK"  # the envelope, as the server sends it
    assert answer["predictions"]["args"] == {
        "text": "hello",
        "count": 2,
        "level": 5,
        "color": "red",
        "ratio": 0.5,
        "flag": True,
        "values": [0.1, 0.2],
        "options": {"a": 1},
        "renamed": "y",
    }
    with pytest.raises(ValidationError) as caught:
        client.predict("v2-basic", level=11)
    assert caught.value.status == 422
    assert caught.value.errors == {
        "count": ["Missing data for required field."],
        "level": ["Must be greater than or equal to 1 and less than or equal to 10."],
    }
    for call in (lambda: client.model("nope"), lambda: client.predict("nope", count=1), lambda: client.jobs("nope")):
        with pytest.raises(ModelNotFound) as missing:
            call()
        assert missing.value.status == 404 and missing.value.available == ["v2-basic"]
        rid = missing.value.request_id  # the server's id for the request, kept and shown
        assert rid and str(missing.value) == f"No model named 'nope'. Installed models: v2-basic. (request id {rid})"


def test_file_uploads(connect, tmp_path):
    client = connect("--model", "typed_basic:Classifier")
    data = tmp_path / "data.bin"
    data.write_bytes(b"x" * 70_000)
    # a schema'd answer is returned as is, not unwrapped from anything
    assert client.predict("typed-basic", features=[1, 2.5], upload=data, k=2) == {
        "label": "fast-2-1",
        "score": 3.5,
        "size": 70_000,
    }
    with data.open("rb") as fh:
        assert client.predict("typed-basic", features=[1], upload=fh)["size"] == 70_000
        assert not fh.closed  # the caller's file stays the caller's
    assert (
        client.predict("typed-basic", features=[1], upload=("x.bin", b"abc", "application/octet-stream"))["size"] == 3
    )


def test_file_arguments_given_as_path_strings(connect, tmp_path, monkeypatch):
    client = connect("--model", "typed_basic:Classifier")
    (tmp_path / "data.bin").write_bytes(b"x" * 1000)
    monkeypatch.chdir(tmp_path)
    # the server's document says ``upload`` is a file: a str naming a file is that file
    assert client.predict("typed-basic", features=[1], upload="data.bin")["size"] == 1000

    class Where:  # any os.PathLike
        def __fspath__(self) -> str:
            return str(tmp_path / "data.bin")

    assert client.predict("typed-basic", features=[1], upload=Where())["size"] == 1000
    for wrong, said in (("missing.bin", "'missing.bin', which is not a file"), (7, "int 7"), (b"xyz", "bytes")):
        with pytest.raises(TypeError) as caught:
            client.predict("typed-basic", features=[1], upload=wrong)
        assert "Argument 'upload' is a file: pass the path of an existing file" in str(caught.value)
        assert said in str(caught.value)
    # a str given to an argument that is not a file is still text
    assert client.predict("typed-basic", features=[1], mode="exact")["label"].startswith("exact")


def test_arguments_by_the_models_keywords(connect, tmp_path):
    client = connect("--model", "aliased:Aliased")
    (tmp_path / "up.bin").write_bytes(b"123")
    answer = client.predict("aliased", top_k=4, upload_file=str(tmp_path / "up.bin"))["predictions"]
    assert (answer["top_k"], answer["size"]) == (4, 3)
    assert client.predict("aliased", **{"top-k": 5})["predictions"]["top_k"] == 5
    assert client.train("aliased", num_epochs=2).wait(timeout=60)["result"]["output"] == {"num_epochs": 2}


def test_failed_job_raises_with_its_record(connect):
    client = connect("--model", "trainer:Trainer")
    job = client.train("trainer", epochs=1, fail=True)
    with pytest.raises(JobFailed) as caught:
        job.wait(timeout=60)
    assert caught.value.record["status"] == "error" and caught.value.record["uuid"] == job.id
    assert f"Job {job.id} ended error" in str(caught.value) and "training diverged" in str(caught.value)
    assert job.wait(timeout=60, raise_on_failure=False)["status"] == "error"


def test_errors_keep_the_request_id():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/train/"):
            return httpx.Response(422, json={"epochs": ["Too many."]}, headers={"X-Request-ID": "r-422"})
        return httpx.Response(400, json={"message": "Bad thing.", "request_id": "r-400"})

    client = mock_client(handler)
    with pytest.raises(BadRequest) as bad:
        client.predict("m", x=1)
    assert bad.value.request_id == "r-400" and str(bad.value) == "Bad thing. (request id r-400)"
    with pytest.raises(ValidationError) as invalid:
        client.train("m", epochs=1000)
    assert invalid.value.request_id == "r-422" and "r-422" in str(invalid.value)
    assert invalid.value.errors == {"epochs": ["Too many."]}


def test_list_of_files(connect, tmp_path):
    client = connect("--model", "v1_seed")
    first, second = tmp_path / "a.bin", tmp_path / "b.txt"
    first.write_bytes(b"12345")
    second.write_bytes(b"12")
    answer = client.predict("v1-seed", data=[first, second], scale=3)
    assert answer == {
        "status": "OK",
        "predictions": [{"size": 15, "kwargs": {"scale": "3"}}, {"size": 6, "kwargs": {"scale": "3"}}],
    }


def test_accept_selects_raw_answers(connect):
    client = connect("--model", "v2_accept")
    assert client.predict("v2-accept") == {"status": "OK", "predictions": {"kind": "json"}}
    assert client.predict("v2-accept", accept="image/png") == PNG
    assert client.predict("v2-accept", accept="text/plain") == b"plain words"
    assert client.predict("v2-accept", accept="application/pdf") == b"%PDF-1.4 fake"
    with pytest.raises(NotAcceptable) as caught:
        client.predict("v2-accept", accept="image/gif")
    assert caught.value.status == 406 and "image/gif" in str(caught.value)


# -------------------------------------------------------------------- training
def test_train_wait_events_logs_files(connect, tmp_path):
    client = connect("--model", "trainer:Trainer")
    job = client.train("trainer", epochs=4, seconds=0.2)
    assert job.status in ("queued", "running") and job.result is None
    # resume: a few events of the running job, then the rest from the 3rd on, exactly once
    stream = job.events()
    first = list(itertools.islice(stream, 3))
    stream.close()
    rest = list(job.events(after=first[2].id))
    record = job.wait(timeout=60)
    assert record["status"] == "done" and job.status == "done"
    assert job.result == {"epochs": 4, "size": None, "pid": record["result"]["output"]["pid"]}
    assert job.progress == 1.0

    events = list(job.events())
    assert first + rest == events
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert events[0] == Event(1, "state", {"status": "queued"})
    assert events[-1] == Event(events[-1].id, "state", {"status": "done"}) and events[-1].final
    assert [e.data["status"] for e in events if e.kind == "state"] == ["queued", "running", "done"]
    progress = [e.data["progress"] for e in events if e.kind == "progress"]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert "starting" in [e.data["line"] for e in events if e.kind == "log"]

    lines, end = job.logs()
    assert "starting" in lines and "from a subprocess" in lines and end == len(lines)
    assert job.logs(2) == (lines[2:], end)
    assert job.logs(end) == ([], end)
    assert list(job.follow_logs()) == lines  # a finished job: all of it, then the end

    assert [j.id for j in client.jobs("trainer")] == [job.id]
    assert client.job("trainer", job.id).result == job.result
    assert [f["path"] for f in job.files()] == ["sub/log.csv", "weights.txt"]
    assert job.download("weights.txt", tmp_path).read_text() == "w=1\n"
    assert (tmp_path / "weights.txt").exists()
    target = job.download("sub/log.csv", tmp_path / "renamed.csv")
    assert target == tmp_path / "renamed.csv" and target.read_text() == "epoch,loss\n"
    with pytest.raises(NotFound) as missing:
        job.download("nope.txt", tmp_path)
    assert missing.value.status == 404 and not list(tmp_path.glob("*.part"))


def test_follow_logs_of_a_running_job(connect):
    client = connect("--model", "trainer:Trainer")
    job = client.train("trainer", epochs=3, seconds=0.3)
    followed = list(job.follow_logs(poll=0.1))
    assert job.refresh()["status"] == "done"
    assert followed == job.logs()[0]  # every line, trailing ones included, once
    assert followed[-1].endswith("finished.")


def test_cancel_delete_timeout_and_unknown_jobs(connect):
    client = connect("--model", "trainer:Trainer")
    long = client.train("trainer", epochs=1000, seconds=0.05)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        long.wait(timeout=1)
    assert time.monotonic() - started < 10
    wait_status(long, {"running"})
    assert long.cancel()["status"] == "cancelled" and long.status == "cancelled"
    assert long.cancel()["status"] == "cancelled"  # a finished job is left alone...
    assert client.job("trainer", long.id).status == "cancelled"  # ...not removed
    with pytest.raises(JobFailed) as failed:
        long.wait(timeout=5)
    assert failed.value.record["status"] == "cancelled" and "cancelled" in str(failed.value)
    assert long.wait(timeout=5, raise_on_failure=False)["status"] == "cancelled"
    long.delete()
    with pytest.raises(JobNotFound) as gone:
        client.job("trainer", long.id)
    assert gone.value.status == 404 and long.id in str(gone.value)

    active = client.train("trainer", epochs=1000, seconds=0.05)
    active.delete()  # cancelled, then removed
    assert client.jobs("trainer") == []

    ghost = Job(client, "trainer", {"uuid": "nope", "status": "queued"})
    for call in (ghost.refresh, ghost.cancel, ghost.files, lambda: list(ghost.events()), ghost.wait):
        with pytest.raises(JobNotFound):
            call()


def test_full_training_queue_is_too_many_jobs(connect):
    client = connect("--model", "trainer:Trainer", "--train-queue", "0")
    with pytest.raises(TooManyJobs) as caught:
        client.train("trainer", epochs=1)
    assert caught.value.status == 429 and caught.value.retry_after == 10


def test_invalid_training_arguments(connect):
    client = connect("--model", "trainer:Trainer")
    with pytest.raises(ValidationError) as caught:
        client.train("trainer", epochs=0)
    assert list(caught.value.errors) == ["epochs"]


def test_unreachable_server_is_server_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nobody listens there
    with Client(f"http://127.0.0.1:{port}") as client, pytest.raises(ServerUnreachable) as caught:
        client.models()
    assert caught.value.status == 503 and str(caught.value).startswith(f"Cannot reach http://127.0.0.1:{port}")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


# -------------------------------------------------------------------- against a mock transport
def mock_client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> Client:
    return Client("http://server/base", transport=httpx.MockTransport(handler), **kwargs)


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        (400, {}, BadRequest, None),
        (401, {}, ClientError, None),
        (403, {}, ClientError, None),
        (406, {}, NotAcceptable, None),
        (409, {}, Conflict, None),
        (413, {}, PayloadTooLarge, None),
        (429, {"Retry-After": "7"}, TooManyJobs, 7),
        (500, {}, ModelError, None),
        (501, {}, NotImplementedByModel, None),
        (502, {}, ModelError, None),
        (503, {"Retry-After": "3"}, Overloaded, 3),
        (504, {}, PredictTimeout, None),
    ],
)
def test_error_answers_raise_their_class(status, headers, kind, retry_after):
    client = mock_client(lambda request: httpx.Response(status, json={"message": "said so"}, headers=headers))
    with pytest.raises(ModelaasError) as caught:
        client.predict("m", x=1)
    assert type(caught.value) is kind
    assert (caught.value.status, caught.value.message) == (status, "said so")
    if retry_after is not None:
        assert caught.value.retry_after == retry_after


def test_token_base_path_and_non_json_errors():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, text="no such route")

    client = mock_client(handler, token="s3cret")
    with pytest.raises(NotFound) as caught:
        client.job("my model", "j1")
    assert type(caught.value) is NotFound and caught.value.message == "no such route"
    with pytest.raises(ModelNotFound):
        client.model("my model")  # a model entry's 404 can only mean the model
    assert seen[0].headers["Authorization"] == "Bearer s3cret"
    assert seen[0].url.raw_path == b"/base/v2/models/my%20model/train/j1"


def test_form_encoding():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(200, json={"status": "OK", "predictions": None})

    client = mock_client(handler)
    client.predict("m", flag=False, values=[1, 2.5], opts={"a": [1]}, skipped=None, empty=[], **{"demo-int": 3})
    assert seen[-1].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen[-1].content == b"flag=false&values=1&values=2.5&opts=%7B%22a%22%3A+%5B1%5D%7D&demo-int=3"
    client.predict("m", count=2, f=("a.txt", b"hello", "text/plain"))
    assert seen[-1].headers["Content-Type"].startswith("multipart/form-data")
    body = seen[-1].content
    assert b'name="count"\r\n\r\n2\r\n' in body
    assert b'name="f"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nhello\r\n' in body


def test_sse_parser():
    parser = SSEParser()
    text = ': keep-alive\r\nretry: 250\r\n\r\nid: 7\nevent: log\ndata: {"line": "a"}\n\ndata: two\ndata:lines\n\n'
    events = [e for line in httpx.Response(200, text=text).iter_lines() if (e := parser.feed(line))]
    assert events == [Event(7, "log", {"line": "a"}), Event(7, "message", "two\nlines")]
    assert parser.retry == 0.25 and parser.last_id == 7


def sse(*events: tuple[int, str, dict[str, Any]]) -> bytes:
    return b"".join(f"id: {i}\nevent: {k}\ndata: {json.dumps(d)}\n\n".encode() for i, k, d in events)


HISTORY = [
    (1, "state", {"status": "queued"}),
    (2, "state", {"status": "running"}),
    (3, "progress", {"progress": 0.5, "metrics": {}}),
    (4, "log", {"line": "half way"}),
    (5, "state", {"status": "done"}),
]


class Dropping(httpx.SyncByteStream):
    """A body that stops in the middle, as when the connection is lost."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def events_server(*, refuse: int = 0) -> tuple[Client, list[httpx.Request]]:
    """Serves the job's events; the first connection drops after event 3 (mid-event 4),
    then ``refuse`` connection attempts fail; later connections resume from Last-Event-ID."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/events"):
            return httpx.Response(200, json={"uuid": "j1", "status": "done"})
        seen.append(request)
        after = int(request.headers.get("Last-Event-ID", "0"))
        if len(seen) == 1:
            body = b"retry: 1\n\n" + sse(*HISTORY[after:3]) + b"id: 4\nevent: log\nda"
            return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, stream=Dropping(body))
        if len(seen) <= 1 + refuse:
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=sse(*HISTORY[after:]))

    return mock_client(handler), seen


def test_events_resume_after_a_dropped_connection():
    client, seen = events_server(refuse=2)
    job = Job(client, "m", {"uuid": "j1", "status": "running"})
    assert list(job.events()) == [Event(*e) for e in HISTORY]  # each once, none lost
    assert [r.headers.get("Last-Event-ID") for r in seen] == [None, "3", "3", "3"]
    assert job.wait(timeout=5)["status"] == "done"


def test_events_give_up_after_repeated_failures():
    client, seen = events_server(refuse=100)
    job = Job(client, "m", {"uuid": "j1", "status": "running"})
    received = []
    with pytest.raises(ModelaasError) as caught:
        received.extend(job.events(after=1))
    assert [e.id for e in received] == [2, 3]
    assert caught.value.status == 503 and "Lost the event stream of job j1" in str(caught.value)
    assert len(seen) == 1 + MAX_RECONNECTS  # the drop, then reconnections that all failed


def test_wait_polls_a_server_without_events():
    answers = iter(["running", "running", "done"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(404, json={"message": "Not Found"})
        return httpx.Response(200, json={"uuid": "j1", "status": next(answers)})

    job = Job(mock_client(handler), "m", {"uuid": "j1", "status": "running"})
    assert job.wait(timeout=5, poll=0.01)["status"] == "done"
