"""The battery, long logs: every reader gets all of a long log, and a log stops at its limit.

One real server runs the ``chatty`` fixture model with ``--train-log-size 2000000``; the
Python client, ``modelaas jobs logs --remote`` and ``modelaas jobs logs`` on the local
store read its logs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelaas.client import Client
from support import wait_for

pytestmark = pytest.mark.slow

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"
TRAIN = "/v2/models/chatty/train/"
LIMIT = 2_000_000


@pytest.fixture
def chatty(server):
    return server("--model", "chatty:Chatty", "--train-log-size", str(LIMIT))


def train(url: str, **args: Any) -> str:
    r = httpx.post(url + TRAIN, data={k: str(v) for k, v in args.items()}, timeout=60)
    assert r.status_code == 200, r.text
    return str(r.json()["uuid"])


def final(url: str, job_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        rec: dict[str, Any] = httpx.get(url + TRAIN + job_id, timeout=60).json()
        return rec if rec["status"] not in ("queued", "running") else None

    return wait_for(ended, timeout=90, what=f"job {job_id} to end", every=0.2)


def printed(lines: list[str]) -> list[int]:
    return [int(line.split()[1]) for line in lines if line.startswith("line ")]


def cli(*args: str, data_dir: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(MODELS), "MODELAAS_DATA_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, "-m", "modelaas", *args], env=env, capture_output=True, timeout=110)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.decode().splitlines()


def test_the_client_and_the_cli_read_all_of_a_long_log(chatty, tmp_path):
    """Finding: follow_logs() returned 20,000 of 50,002 lines, `jobs logs` 10,000 remotely
    and 1,000 from a local store, silently."""
    total = 50_000
    with Client(chatty.url, timeout=60) as client:
        running = client.train("chatty", lines=total, seconds=3)
        followed = list(running.follow_logs(poll=0.1))  # from its start to its end
        job_id = train(chatty.url, lines=total)
        record = final(chatty.url, job_id)
        assert record["status"] == "done" and record["log_lines_dropped"] == 0
        done = client.job("chatty", job_id)
        after = list(done.follow_logs())  # a finished job: all of it at once
        assert list(done.all_logs()) == after and done.logs()[1] == 10_000  # logs(): one page
    assert printed(followed) == list(range(total)) and len(followed) == total + 2  # with "started", "finished"
    assert printed(after) == list(range(total)) and len(after) == record["log_lines"]
    remote = cli("jobs", "logs", job_id, "--remote", chatty.url, data_dir=tmp_path)
    assert remote == after
    local = cli("jobs", "logs", job_id, data_dir=tmp_path / "data")
    assert local == after
    local_follow = cli("jobs", "logs", job_id, "--follow", data_dir=tmp_path / "data")
    assert local_follow == after


def test_a_log_past_its_limit_ends_with_a_line_saying_so_and_the_record_counts_the_rest(chatty, tmp_path):
    total = 200_000
    job_id = train(chatty.url, lines=total, width=10)
    record = final(chatty.url, job_id)
    with Client(chatty.url, timeout=60) as client:
        lines = list(client.job("chatty", job_id).follow_logs())
    numbers = printed(lines)
    assert record["status"] == "done", record
    assert lines[-1].startswith(f"[modelaas] The log reached its limit of {LIMIT:,} bytes (--train-log-size)")
    assert sum(len(line.encode()) + 1 for line in lines[:-1]) <= LIMIT
    assert numbers == list(range(len(numbers))) and 0 < len(numbers) < total
    assert record["log_lines_dropped"] == total - len(numbers) + 1  # the "finished" line did not fit either
    assert record["log_lines"] == len(lines)
    end = httpx.get(chatty.url + TRAIN + job_id + "/logs", params={"offset": str(len(lines) - 1)}, timeout=60)
    assert end.text.splitlines() == [lines[-1]] and end.headers["X-Next-Offset"] == str(len(lines))


def test_event_streams_are_bounded_per_serving_process(server):
    """Finding: 400 open event streams slowed train routes from 5 ms to 0.4-0.9 s; now they
    are bounded (--max-event-streams), the next one answers 503, a closed one frees its slot."""
    srv = server("--model", "chatty:Chatty", "--max-event-streams", "3")
    job_id = train(srv.url, lines=10, seconds=60)
    events = f"{srv.url}{TRAIN}{job_id}/events"

    def one_more() -> int:
        with httpx.stream("GET", events, timeout=30) as extra:
            return extra.status_code

    with httpx.Client(timeout=30) as client:
        opened = [client.stream("GET", events) for _ in range(3)]
        streams = [s.__enter__() for s in opened]
        try:
            assert [s.status_code for s in streams] == [200, 200, 200]
            refused = httpx.get(events, timeout=30)
            assert refused.status_code == 503, refused.text
            assert "--max-event-streams" in refused.json()["message"] and refused.headers["Retry-After"] == "5"
            assert httpx.get(f"{srv.url}{TRAIN}{job_id}", timeout=30).status_code == 200
            opened[0].__exit__(None, None, None)  # one client leaves: its slot is free again
            wait_for(lambda: one_more() == 200, timeout=30, what="the closed stream's slot to be free")
        finally:
            for stream in opened[1:]:
                stream.__exit__(None, None, None)
