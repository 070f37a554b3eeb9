"""The battery, job store part: real servers whose store is contended or goes away.

Trainings run the ``chatty`` fixture model, which prints numbered lines. Every check is
bounded in requests and time; figures are printed with ``-s``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from support import wait_for

pytestmark = pytest.mark.slow

SERVE = ("--model", "chatty:Chatty")
TRAIN = "/v2/models/chatty/train/"


def submit(url: str, timeout: float = 60, **args: Any) -> str:
    r = httpx.post(
        url + TRAIN,
        data={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in args.items()},
        timeout=timeout,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["uuid"])


def record(url: str, job_id: str) -> dict[str, Any]:
    r = httpx.get(url + TRAIN + job_id, timeout=60)
    assert r.status_code == 200, r.text
    rec: dict[str, Any] = r.json()
    return rec


def wait_final(url: str, job_id: str, timeout: float = 90) -> dict[str, Any]:
    return wait_for(
        lambda: (rec := record(url, job_id))["status"] not in ("queued", "running") and rec,
        timeout=timeout,
        what=f"job {job_id} to end",
        every=0.2,
    )


def all_log_lines(url: str, job_id: str) -> list[str]:
    lines: list[str] = []
    while True:
        r = httpx.get(url + TRAIN + job_id + "/logs", params={"offset": str(len(lines))}, timeout=60)
        assert r.status_code == 200, r.text
        chunk = r.text.splitlines()
        if not chunk:
            return lines
        lines.extend(chunk)


def printed(lines: list[str]) -> list[int]:
    """The numbers of the ``line <n> ...`` lines the chatty model printed."""
    return [int(line.split()[1]) for line in lines if line.startswith("line ")]


def test_clients_re_reading_a_big_log_do_not_stop_a_training_from_storing_its_own(server):
    """Reads took SQLite's write lock: under readers a training lost lines or failed.

    (The deterministic proof is ``tests/jobs/test_store_faults.py``; this is the same
    situation end to end.)
    """
    srv = server(*SERVE)
    big = submit(srv.url, lines=30_000, width=100)
    assert wait_final(srv.url, big)["status"] == "done"
    stop = threading.Event()
    reads = [0]

    def reread() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                r = client.get(srv.url + TRAIN + big + "/logs", params={"offset": "20000"})
                assert r.status_code == 200, r.text
                reads[0] += 1

    readers = [threading.Thread(target=reread, daemon=True) for _ in range(4)]
    for reader in readers:
        reader.start()
    try:
        started = time.monotonic()
        job = submit(srv.url, lines=20_000, seconds=2)
        submitted = time.monotonic() - started
        final = wait_final(srv.url, job)
    finally:
        stop.set()
        for reader in readers:
            reader.join(60)
    print(f"\n{reads[0]} reads of a 30,000-line log meanwhile; submission answered in {submitted:.2f} s")
    assert final["status"] == "done", final
    assert printed(all_log_lines(srv.url, job)) == list(range(20_000))


# ========================================================= PostgreSQL outages
def test_connections_dropped_again_and_again_lose_no_line_and_free_the_slot(server, pg_outage):
    """Finding: after pg_terminate_backend a heavily logging training froze (its log thread
    blocked on its own pipe) or finished with lines silently missing."""
    url, outage = pg_outage
    srv = server(*SERVE, "--jobs-db", url, "--train-workers", "1")
    job = submit(srv.url, lines=200_000, width=60, seconds=6)
    wait_for(lambda: record(srv.url, job)["status"] == "running", timeout=60, what="the training to start")
    for _ in range(8):
        time.sleep(0.5)
        outage.terminate()
    nxt = submit(srv.url, lines=10)  # waits for the slot
    final = wait_final(srv.url, job)
    print(f"\n{outage.terminated} connections terminated during the training; it ended {final['status']}")
    assert final["status"] == "done", final
    assert printed(all_log_lines(srv.url, job)) == list(range(200_000))
    assert final["log_lines_dropped"] == 0
    assert wait_final(srv.url, nxt)["status"] == "done"  # the slot was freed
    assert outage.terminated > 8


def test_a_long_outage_keeps_the_end_of_the_log_and_says_what_is_missing(server, pg_outage):
    """The store refuses connections for a while; the training keeps printing: the buffer's
    bound drops the oldest waiting lines, a line in the log says how many, the record counts them."""
    url, outage = pg_outage
    srv = server(*SERVE, "--jobs-db", url)
    total = 400_000
    job = submit(srv.url, lines=total, width=100, seconds=8)
    wait_for(lambda: record(srv.url, job)["log_lines"] > 1000, timeout=60, what="the first lines to be stored")
    outage.refuse()
    try:
        time.sleep(6)
    finally:
        outage.refuse(False)
    final = wait_final(srv.url, job)
    lines = all_log_lines(srv.url, job)
    numbers = printed(lines)
    markers = [line for line in lines if line.startswith("[modelaas]")]
    print(f"\nafter a 6 s outage: {len(numbers)} of {total} lines kept, {final['log_lines_dropped']} dropped")
    assert final["status"] == "done", final
    assert final["log_lines_dropped"] > 0
    assert len(numbers) + final["log_lines_dropped"] == total
    assert numbers == sorted(numbers) and numbers[-1] == total - 1  # in order, the end kept
    assert sum(int(m.split()[1]) for m in markers) == final["log_lines_dropped"], markers
    assert final["log_lines"] == len(lines)
