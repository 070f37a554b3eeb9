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
