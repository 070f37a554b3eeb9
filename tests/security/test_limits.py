"""Limits on what a client may send, and how long it may take: each answers a 4xx in bounded time.

In-process checks drive the ASGI app with a hand-made ``receive``; the ones about sockets
(request heads, idle connections) use a real server on loopback.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from modelaas.model.loader import ModelRef, load
from modelaas.runtime import Runtime
from modelaas.settings import Settings
from modelaas.web.app import create_app
from modelaas.web.uploads import JSON_MAX_DEPTH, MAX_PART_HEADERS, json_too_deep, load_json
from support import spool_files

PREDICT = "/v2/models/v2-basic/predict/"


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


# ------------------------------------------------------------------ slow bodies (in-process)
async def _drive(app: Any, headers: list[tuple[bytes, bytes]], chunks: list[tuple[float, bytes]]) -> dict[str, Any]:
    """Send one request to ``app``: each chunk after its delay; answer status, headers and body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PREDICT,
        "raw_path": PREDICT.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 5000),
        "state": {},
    }
    pending = list(chunks)
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        if not pending:
            await anyio.sleep(3600)  # the client sends nothing more (and does not leave)
        delay, chunk = pending.pop(0)
        await anyio.sleep(delay)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    with anyio.fail_after(10):
        await app(scope, receive, send)
    return answer


@pytest.fixture
def slow_body_app(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data", body_timeout=0.5)
    return create_app(
        settings, runtime=Runtime(settings, [load(ModelRef("v2-basic", "v2_basic", None, "test"))])
    ), settings


BOUNDARY = "b0undary"
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
MULTIPART = [(b"content-type", MULTIPART_TYPE.encode())]
FILE_PART = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"; filename="x.bin"\r\n\r\n'.encode() + b"x" * 1000
)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_body_sent_too_slowly_gets_408_and_leaves_no_file(slow_body_app):
    app, settings = slow_body_app
    started = time.monotonic()
    answer = await _drive(app, MULTIPART, [(0.0, FILE_PART), (0.2, b"y" * 1000), (0.2, b"y"), (0.2, b"y")])
    waited = time.monotonic() - started
    assert answer["status"] == 408, answer
    body = json.loads(answer["body"])
    assert "0.5 s" in body["message"] and "--body-timeout" in body["message"]
    assert body["request_id"] == answer["headers"]["x-request-id"]
    assert answer["headers"]["connection"] == "close"
    assert 0.4 < waited < 2
    assert spool_files(settings.upload_dir) == []


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_client_that_stops_sending_gets_408(slow_body_app):
    app, _ = slow_body_app
    headers = [(b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", b"100")]
    answer = await _drive(app, headers, [(0.0, b"count=1&"), (3600, b"")])  # then silence
    assert answer["status"] == 408


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_body_in_time_is_served(slow_body_app):
    app, _ = slow_body_app
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    answer = await _drive(app, headers, [(0.0, b"count="), (0.1, b"2")])
    assert answer["status"] == 200, answer
    assert json.loads(answer["body"])["predictions"]["args"]["count"] == 2


# ------------------------------------------------------------------ JSON nesting
def test_json_body_nested_up_to_the_limit_is_accepted(make_client):
    c = make_client("v2_basic")
    body = {"count": 1, "options": nested(JSON_MAX_DEPTH - 1)}  # the outer object is level 1
    r = c.post(PREDICT, content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("depth", [JSON_MAX_DEPTH, 5_000, 100_000])
def test_json_body_nested_deeper_is_400_without_recursion(make_client, caplog, depth):
    c = make_client("v2_basic")
    text = '{"count": 1, "options": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
    r = c.post(PREDICT, content=text, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text[:300]
    assert f"more than {JSON_MAX_DEPTH} deep" in r.json()["message"]
    assert "RecursionError" not in caplog.text


def test_depth_is_measured_without_recursion():
    assert not json_too_deep(nested(64)) and json_too_deep(nested(65))
    assert not json_too_deep([[1, [2]], {"a": [3]}], limit=3) and json_too_deep([[[[1]]]], limit=3)
    assert json_too_deep(nested(100_000))  # would blow Python's recursion limit if walked recursively
    assert load_json("[1, 2]", what="x") == [1, 2]


@pytest.mark.parametrize("field", ["values", "options"])
def test_json_in_a_form_field_nested_too_deep_is_a_4xx(make_client, field):
    c = make_client("v2_basic")
    deep = "[" * 5_000 + "]" * 5_000 if field == "values" else '{"a":' * 5_000 + "1" + "}" * 5_000
    r = c.post(PREDICT, data={"count": "1", field: deep})
    assert 400 <= r.status_code < 500, r.text


# ------------------------------------------------------------------ multipart part headers
def test_large_part_headers_are_refused(make_client):
    # Five headers just under python-multipart's own per-header cap (if it has one): 20 KB in all.
    padding = "".join(f"X-Padding-{i}: {'p' * 4000}\r\n" for i in range(5))
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"; filename="x.bin"\r\n'
        f"{padding}\r\nabc\r\n--{BOUNDARY}--\r\n"
    )
    c = make_client("size_only:SizeOnly")
    r = c.post("/v2/models/size-only/predict/", content=body, headers={"content-type": MULTIPART_TYPE})
    assert r.status_code == 400 and f"larger than {MAX_PART_HEADERS} bytes" in r.json()["message"]


# ------------------------------------------------------------------ sockets (real server)
def _raw(port: int, data: bytes, *, wait: float = 10) -> tuple[bytes, float]:
    """Send ``data`` and read until the server closes; answer what came back and how long it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return received, time.monotonic() - started


@pytest.fixture
def strict_server(server):
    return server(
        "--model",
        "v2_basic",
        "--max-header-size",
        "8192",
        "--header-timeout",
        "1",
        "--keep-alive-timeout",
        "1",
        "--body-timeout",
        "1",
    )


@pytest.mark.slow
def test_oversized_request_heads_get_431(strict_server):
    srv = strict_server
    for head in (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GET /healthz?" + b"q" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Many: y\r\n" * 2_000 + b"\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"a" * 5_000_000,  # never ends
    ):
        answer, took = _raw(srv.port, head)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert b"--max-header-size" in answer and took < 5
        assert b"\r\nx-request-id: " in answer.lower() and b'"request_id"' in answer  # answered before routing too
    ok, _ = _raw(
        srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Fine: " + b"a" * 4000 + b"\r\n\r\n"
    )
    assert ok.startswith(b"HTTP/1.1 200 ")


@pytest.mark.slow
def test_slow_request_heads_get_408_and_silent_connections_are_closed(strict_server):
    srv = strict_server
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        try:
            for _ in range(20):  # a slow-loris drip: one header line every 0.2 s
                time.sleep(0.2)
                sock.sendall(b"X-Drip: 1\r\n")
        except OSError:
            pass
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert time.monotonic() - started < 4

    silent, took = _raw(srv.port, b"")  # connects and says nothing
    assert silent == b"" and 0.5 < took < 4


@pytest.mark.slow
def test_idle_keep_alive_connections_are_closed(strict_server):
    srv = strict_server
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        while not first.endswith(b'{"status":"ok"}'):  # the head and the body may come in two reads
            more = sock.recv(65536)
            assert more, first
            first += more
        started = time.monotonic()
        assert sock.recv(65536) == b""  # closed by the server after --keep-alive-timeout
        assert 0.5 < time.monotonic() - started < 4


@pytest.mark.slow
def test_a_real_slow_body_gets_408_and_the_server_goes_on(strict_server, tmp_path):
    srv = strict_server
    head = (
        f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        "Content-Length: 100000\r\n\r\n"
    ).encode()
    answer, took = _raw(srv.port, head + FILE_PART)  # 1 KB of 100 KB, then nothing
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert b"--body-timeout" in answer and took < 5
    assert spool_files(tmp_path / "data" / "uploads") == []
    assert httpx.post(srv.url + PREDICT, data={"count": "1"}).status_code == 200
