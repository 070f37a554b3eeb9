"""``modelaas reload MODEL``: on the local job store, or on a server (``--remote``); ``Client.reload``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from modelaas.client import Client
from modelaas.errors import ModelNotFound
from modelaas.versions.serving import ServingStore
from support import wait_for


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelaas", "reload", *args],
        env=os.environ.copy(),
        capture_output=True,
        timeout=120,
        text=True,
    )


def test_reload_raises_the_generation_in_the_local_job_store(tmp_path: Path):
    db = tmp_path / "jobs.sqlite3"
    first = run("slow-warm", "--jobs-db", str(db))
    assert first.returncode == 0, first.stderr
    assert "Reload of 'slow-warm' asked for (generation 1)." in first.stdout
    second = run("slow-warm", "--jobs-db", str(db))
    assert "(generation 2)" in second.stdout
    store = ServingStore(f"sqlite:///{db}")
    try:
        state = store.state("slow-warm")
    finally:
        store.close()
    assert state.generation == 2


def test_a_local_store_option_with_remote_is_a_usage_error(tmp_path: Path):
    r = run("slow-warm", "--remote", "http://127.0.0.1:9", "--jobs-db", str(tmp_path / "x.db"))
    assert r.returncode == 2 and "--jobs-db: for a local job store, not with --remote" in r.stderr


@pytest.mark.slow
def test_reload_of_a_server(server, tmp_path: Path):
    srv = server("--model", "slow_warm:SlowWarm", "--serving-poll", "0.5", "--jobs-db", str(tmp_path / "jobs.db"))
    r = run("slow-warm", "--remote", srv.url)
    assert r.returncode == 0, r.stderr
    assert "(generation 1)" in r.stdout

    def generation() -> str | None:
        answer = httpx.post(srv.url + "/v2/models/slow-warm/predict/", json={}, timeout=10)
        return answer.headers["x-modelaas-generation"]

    wait_for(lambda: generation() == "1" or None, timeout=60, what="generation 1")
    with Client(srv.url) as client:
        assert client.reload("slow-warm") == {"model": "slow-warm", "active": None, "generation": 2}
        with pytest.raises(ModelNotFound):
            client.reload("nope")
    wait_for(lambda: generation() == "2" or None, timeout=60, what="generation 2")
    unknown = run("nope", "--remote", srv.url)
    assert unknown.returncode != 0 and "nope" in unknown.stderr and "Traceback" not in unknown.stderr
