"""A large upload streams to disk: bounded server memory, nothing left behind."""

import threading
import time

import httpx
import psutil
import pytest

from support import wait_for

pytestmark = pytest.mark.slow

MIB = 1024 * 1024


def multipart_stream(boundary: str, field: str, size: int, chunk: int = MIB):
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    block = b"\xab" * chunk
    sent = 0
    while sent < size:
        n = min(chunk, size - sent)
        yield block[:n]
        sent += n
    yield f"\r\n--{boundary}--\r\n".encode()


def peak_rss_during(pid: int, work):
    proc = psutil.Process(pid)
    baseline = proc.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], proc.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = work()
    finally:
        done.set()
        sampler.join()
    return result, peak[0] - baseline


def test_512_mib_upload_keeps_memory_flat_and_leaves_no_file(server, tmp_path):
    srv = server("--model", "size_only:SizeOnly")
    (worker,) = srv.worker_pids()
    size = 512 * MIB
    boundary = "modelaas-test-boundary"

    def upload():
        return httpx.post(
            srv.url + "/v2/models/size-only/predict/",
            content=multipart_stream(boundary, "data", size),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
            timeout=120,
        )

    answer, growth = peak_rss_during(worker, upload)
    assert answer.status_code == 200 and answer.json()["predictions"] == {"size": size}
    print(f"512 MiB upload: serving process RSS grew by {growth / MIB:.1f} MiB")
    assert growth < 64 * MIB, f"server memory grew by {growth / MIB:.1f} MiB"
    spool = tmp_path / "data" / "uploads"
    # deleted once the answer is out (after it: an answer may be the upload itself), so soon after the client has it
    wait_for(lambda: not [p for p in spool.rglob("*") if p.is_file()], timeout=30, what="the upload to be deleted")


def test_over_the_cap_is_refused_before_the_body_is_read(server):
    srv = server("--model", "size_only:SizeOnly", "--client-max-size", str(10 * MIB))
    boundary = "b"
    started = time.monotonic()
    try:
        r = httpx.post(
            srv.url + "/v2/models/size-only/predict/",
            content=b"x" * (11 * MIB),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
            timeout=30,
        )
        assert r.status_code == 413 and "10485760" in r.json()["message"]
    except httpx.TransportError:
        pass  # the server may close the connection while the client is still sending: also a refusal
    assert time.monotonic() - started < 10
    assert httpx.get(srv.url + "/healthz").status_code == 200
