"""The battery: real servers on loopback under model faults, hostile uploads and SIGTERM.

Each check is bounded in requests and time and stops by itself. Figures (times, memory,
open files) are printed with ``-s``; docs/reliability.md quotes them.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest

from support import spool_files, wait_for

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
T = TypeVar("T")


def serving_pids(srv: Any) -> set[int]:
    """The server's live serving processes (not trainings, not multiprocessing's helpers)."""
    pids = set()
    for child in psutil.Process(srv.proc.pid).children():
        try:
            command = " ".join(child.cmdline())
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.ZombieProcess, FileNotFoundError):
            continue  # died while we looked: a crashed serving process, say
        if "resource_tracker" not in command and "modelaas.jobs.child" not in command:
            pids.add(child.pid)
    return pids


# ==================================================================== model faults
FAULTS = "/v2/models/faults/predict/"


def test_model_faults_raise_hang_segfault_and_the_server_goes_on(server):
    srv = server("--model", "faults:Faults", "--workers", "2", "--predict-timeout", "1")
    url = srv.url + FAULTS
    before = serving_pids(srv)
    assert len(before) == 2

    # raises: 500 with the model's message, nothing more; the next request is served
    r = httpx.post(url, data={"how": "raise"}, timeout=10)
    assert r.status_code == 500
    assert r.json()["message"] == "Model 'faults' failed in predict: the model failed on purpose"
    assert httpx.post(url, timeout=10).status_code == 200

    # hangs: 504 after --predict-timeout; meanwhile the other serving process answers
    with ThreadPoolExecutor(5) as pool:
        started = time.monotonic()
        hung = pool.submit(httpx.post, url, data={"how": "hang", "seconds": "5"}, timeout=30)
        time.sleep(0.2)
        others = [pool.submit(_timed_post, url) for _ in range(4)]
        answer = hung.result()
        took = time.monotonic() - started
        assert answer.status_code == 504, answer.text
        assert "--predict-timeout" in answer.json()["message"]
        assert 0.9 < took < 3, took
        served = [f.result() for f in others]
    fast = [seconds for status, seconds in served if status == 200 and seconds < 2]
    assert fast, served  # served by the other process while the hang went on
    assert all(status == 200 for status, _ in served), served  # the rest once the hang ended
    print(f"\nhang: 504 after {took:.2f} s; others answered in {sorted(round(s, 2) for _, s in served)} s")

    # segfaults: the request answers or its connection drops; the process is replaced
    try:
        crash = httpx.post(url, data={"how": "segfault"}, timeout=10)
        assert crash.status_code >= 500
    except httpx.TransportError:
        pass

    def new_process() -> set[int] | None:
        pids = serving_pids(srv)
        return pids if len(pids) == 2 and pids != before else None

    replaced = wait_for(new_process, timeout=15, what="a new serving process")
    assert len(replaced & before) == 1
    for _ in range(10):
        assert httpx.post(url, timeout=10).status_code == 200
    assert srv.proc.poll() is None


def _timed_post(url: str) -> tuple[int, float]:
    started = time.monotonic()
    status = httpx.post(url, timeout=30).status_code
    return status, time.monotonic() - started


def test_a_leaking_model_keeps_being_served(server):
    """No recycling on memory yet (docs/reliability.md): the process grows and keeps serving."""
    calls = 12
    srv = server("--model", "faults:Faults")
    (pid,) = serving_pids(srv)
    process = psutil.Process(pid)
    assert httpx.post(srv.url + FAULTS).status_code == 200
    baseline = process.memory_info().rss
    for n in range(1, calls + 1):
        r = httpx.post(srv.url + FAULTS, data={"how": "leak"}, timeout=30)
        assert r.status_code == 200 and r.json()["predictions"]["kept"] == n
    grown = process.memory_info().rss - baseline
    print(f"\nleak: {calls} calls x 50 MiB: serving process RSS grew by {grown / MIB:.0f} MiB, still serving")
    assert grown > (calls - 1) * 50 * MIB  # the leak is real ...
    assert httpx.get(srv.url + "/healthz").status_code == 200  # ... and the server goes on
    assert httpx.post(srv.url + FAULTS).json()["predictions"]["pid"] == pid


# ==================================================================== hostile uploads
ECHO = "/v2/models/upload-echo/predict/"
BOUNDARY = "battery-boundary"
HOSTILE_NAMES = [
    "../../etc/passwd",
    "/etc/passwd",
    "..\\..\\windows\\win.ini",
    "a\x00b.txt",
    "x" * 4096 + ".png",
    "\u202egnp.exe",
    "CON",
    ".",
    "name with spaces; and=equals.txt",
]


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


def multipart(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def post_multipart(url: str, body: bytes | Iterator[bytes], **headers: str) -> httpx.Response:
    return httpx.post(
        url, content=body, headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}", **headers}, timeout=30
    )


def abort_upload(port: int, *, declared: int, sent: int) -> None:
    """Send part of a multipart upload, then hang up."""
    head = (
        f"POST {ECHO} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    first = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"; filename="big.bin"\r\n\r\n'.encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + first)
        block = b"\xab" * 65536
        for _ in range(sent // len(block)):
            sock.sendall(block)
        time.sleep(0.05)  # the server is writing the file


@pytest.fixture
def upload_server(server):
    return server(
        "--model",
        "upload_echo:UploadEcho",
        "--model-name",
        "upload-echo",
        "--max-parts",
        "50",
        "--client-max-size",
        str(20 * MIB),
        "--max-field-size",
        str(64 * 1024),
        "--body-timeout",
        "5",
    )


def test_hostile_uploads_answer_4xx_in_bounded_time_and_leave_nothing_behind(upload_server, tmp_path):
    srv = upload_server
    data_dir = tmp_path / "data"
    spool = (data_dir / "uploads").resolve()
    (pid,) = serving_pids(srv)
    process = psutil.Process(pid)
    for _ in range(3):  # warm up: the model, the spool directory, the connection pool
        assert post_multipart(srv.url + ECHO, multipart(part("data", b"x", "x.bin"))).status_code == 200
    assert httpx.get(srv.url + "/metrics").status_code == 200  # ... and the metric files (opened once)
    fds, rss = process.num_fds(), process.memory_info().rss

    # hostile filenames: stored under a random name inside the spool; the original only as data
    for name in HOSTILE_NAMES:
        r = post_multipart(srv.url + ECHO, multipart(part("data", b"content", name)))
        assert r.status_code == 200, (name[:40], r.text[:200])
        answer = r.json()["predictions"]
        stored = Path(answer["path"])
        assert stored.resolve().is_relative_to(spool), stored
        assert stored.name.split(".")[0].isalnum() and len(stored.name) <= 32 + 17
        assert answer["original"] == name and answer["size"] == 7

    # abuse: each refused with a 4xx, quickly
    abuse = {
        "5000 tiny fields": multipart(*[part(f"f{i}", b"v") for i in range(5000)]),
        "5000 tiny files": multipart(*[part("data", b"v", f"{i}.bin") for i in range(5000)]),
        "a 1 MiB field": multipart(part("data", b"x", "x.bin"), part("note", b"n" * MIB)),
        "a 30 MiB body": multipart(part("data", b"\0" * 30 * MIB, "big.bin")),
        "part headers of 64 KiB": (
            f"--{BOUNDARY}\r\n".encode() + b"".join(f"X-H{i}: {'h' * 4000}\r\n".encode() for i in range(16)) + b"\r\n"
        ),
        "no closing boundary": part("data", b"x" * 1000, "x.bin"),
        "a broken boundary": b"--not-the-boundary\r\n\r\n",
    }
    timings = {}
    for what, body in abuse.items():
        started = time.monotonic()
        try:
            r = post_multipart(srv.url + ECHO, body)
            status = r.status_code
        except httpx.TransportError:  # the server may hang up on an over-large body: also a refusal
            status = 413 if "30 MiB" in what else 0
        timings[what] = time.monotonic() - started
        assert 400 <= status < 500, (what, status)
        assert timings[what] < 10, (what, timings[what])

    # aborted uploads: the client hangs up mid-body
    for _ in range(20):
        abort_upload(srv.port, declared=10 * MIB, sent=MIB)

    assert httpx.get(srv.url + "/healthz").status_code == 200
    wait_for(lambda: spool_files(data_dir / "uploads") == [], timeout=10, what="the upload spool to be empty")
    wait_for(lambda: process.num_fds() <= fds, timeout=30, what=f"open files back to {fds}")  # a loaded CI machine
    grown = process.memory_info().rss - rss
    print(
        f"\nabuse: slowest refusal {max(timings.values()):.2f} s; open files {process.num_fds()} (baseline {fds}); "
        f"RSS +{grown / MIB:.1f} MiB"
    )
    assert grown < 100 * MIB


# ==================================================================== SIGTERM
DURABLE = "/v2/models/durable"


@pytest.fixture
def marker() -> Iterator[str]:
    token = f"battery-{uuid.uuid4().hex}"
    yield token
    for proc in psutil.process_iter(["cmdline"]):  # whatever a failing test left behind
        if token in " ".join(proc.info["cmdline"] or ()):
            try:
                os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def slow_upload(seconds: float) -> Iterator[bytes]:
    """A multipart body that takes ``seconds`` to send: ``seconds=0.0000000000``, a digit at a time."""
    yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="seconds"\r\n\r\n0.'.encode()
    for _ in range(10):
        time.sleep(seconds / 10)
        yield b"0"
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def test_sigterm_with_requests_uploads_streams_and_queued_trainings(server, marker, tmp_path):
    srv = server("--model", "durable:Durable", "--workers", "2", "--train-workers", "1")
    running = httpx.post(srv.url + f"{DURABLE}/train/", data={"marker": marker, "seconds": "120"}).json()["uuid"]
    queued = httpx.post(srv.url + f"{DURABLE}/train/", data={"marker": marker, "seconds": "120"}).json()["uuid"]
    wait_for(
        lambda: httpx.get(srv.url + f"{DURABLE}/train/{running}").json()["status"] == "running",
        timeout=60,
        what="the first training to run",
    )
    events: list[str] = []

    def follow() -> None:
        try:
            with httpx.stream("GET", srv.url + f"{DURABLE}/train/{running}/events", timeout=60) as stream:
                events.extend(stream.iter_lines())
        except httpx.HTTPError as exc:
            events.append(f"error: {exc!r}")

    follower = threading.Thread(target=follow)
    follower.start()
    with ThreadPoolExecutor(6) as pool:
        predictions = [
            pool.submit(httpx.post, srv.url + f"{DURABLE}/predict/", data={"seconds": "2"}, timeout=60)
            for _ in range(4)
        ]
        upload = pool.submit(post_multipart, srv.url + f"{DURABLE}/predict/", slow_upload(2.0))
        time.sleep(0.7)  # everything is in flight
        stopped_at = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        answers = [p.result() for p in predictions]
        uploaded = upload.result()
    code, err = srv.wait_exit(timeout=60)
    took = time.monotonic() - stopped_at
    follower.join(10)

    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert uploaded.status_code == 200, uploaded.text
    assert code == 0, err
    assert "Traceback" not in err, err
    print(f"\nSIGTERM: exit 0 after {took:.1f} s with 4 predictions, an upload and an event stream in flight")
    assert took < 15, f"took {took:.1f} s to stop"
    assert not follower.is_alive()
    with pytest.raises(httpx.TransportError):
        httpx.get(srv.url + "/healthz", timeout=2)

    from modelaas.jobs.records import JobStatus
    from modelaas.jobs.store import JobStore, store_url

    store = JobStore(store_url(None, tmp_path / "data"))
    try:
        first, second = store.get(running), store.get(queued)
    finally:
        store.close()
    assert first is not None and first.status is JobStatus.INTERRUPTED and first.message
    assert second is not None and second.status is JobStatus.INTERRUPTED
    assert second.message == "The server stopped before the job started."
