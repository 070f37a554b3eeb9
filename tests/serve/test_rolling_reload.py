"""Rolling reloads of real servers: new serving processes take over one at a time, no request fails.

The load is wrk (64 keep-alive connections) with a script that tallies every answer by the
generation it carries (``X-Modelaas-Generation``) and counts non-2xx answers and socket errors.
The model's warm() takes half a second, so that old and new processes really overlap.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from modelaas.jobs.database import store_url
from modelaas.tokens import hash_token
from modelaas.versions.serving import ServingStore
from support import ServerProcess, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (the Debian package)"),
]

MODEL = "slow-warm"
PREDICT = f"/v2/models/{MODEL}/predict/"
SCRIPT = Path(__file__).with_name("generations.lua")
FINISHED = "Reload finished"
ABANDONED = "Reload abandoned"


@dataclass
class Load:
    """What wrk saw: its error counts and, per generation, how many answers and when the last came."""

    errors: dict[str, int]
    answers: dict[str, int]
    last: dict[str, float]

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def under_load(srv: ServerProcess, change: Callable[[], None], until: str, *, count: int = 1) -> tuple[Load, float]:
    """Run wrk against ``srv``, ``change()`` its serving state meanwhile, wait for the ``count``-th
    log line ``until`` (bounded), let the load go on a little, stop wrk; also when ``until`` was seen."""
    wrk = subprocess.Popen(
        ["wrk", "-t2", "-c64", "-d300s", "--timeout", "20s", "-s", str(SCRIPT), srv.url + PREDICT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)  # the connections are open and busy before the change
        change()
        try:
            wait_for(lambda: srv.stderr_text().count(until) >= count or None, timeout=90, what=until)
        except AssertionError as exc:
            lines = srv.stderr_text().splitlines(True)
            said = "".join(line for line in lines if " modelaas." in line and "modelaas.access" not in line)
            raise AssertionError(f"{exc}; the server said:\n{said[-5000:]}") from None
        seen = time.time()
        time.sleep(1.0)  # answers after the reload
        wrk.send_signal(signal.SIGINT)  # wrk stops, prints its summary and runs done()
        out, err = wrk.communicate(timeout=60)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.communicate()
    assert wrk.returncode == 0, err
    errors = re.search(r"ERRORS (.*)", out)
    assert errors is not None, out
    load = Load({k: int(v) for k, v in (p.split("=") for p in errors.group(1).split())}, {}, {})
    for g, n, at in re.findall(r"GENERATION (\S+) answers=(\d+) last=([\d.]+)", out):
        load.answers[g], load.last[g] = int(n), float(at)
    print(f"wrk: errors {load.errors}, answers by generation {load.answers}")  # shown by pytest -rP
    return load, seen


def generation(srv: ServerProcess) -> str | None:
    r = httpx.post(srv.url + PREDICT, json={}, timeout=10)
    assert r.status_code == 200, r.text
    return r.headers.get("x-modelaas-generation")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Servers of the slow-warm model, each with a data directory of its own, stopped afterwards."""
    started: list[ServerProcess] = []

    def start(jobs_db: str, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
        data = tmp_path / f"data{len(started)}"
        srv = ServerProcess(
            ["--model", "slow_warm:SlowWarm", "--jobs-db", jobs_db, "--serving-poll", "0.5", *args],
            data_dir=data,
            env=env,
        )
        started.append(srv)
        srv.wait_ready(timeout=90)  # one process answers: the others may still be warming
        wait_for(lambda: "modelaas is ready on" in srv.stderr_text() or None, timeout=90, what="every process warm")
        return srv

    yield start
    for srv in started:
        srv.stop()


def test_a_reload_under_load_fails_no_request(servers, jobs_db):
    srv = servers(jobs_db, "--workers", "2")
    store = ServingStore(store_url(jobs_db, Path()))
    try:
        old = set(srv.worker_pids())
        load, finished = under_load(srv, lambda: store.request_reload(MODEL, by="test"), FINISHED)
    finally:
        store.close()
    assert load.failed == 0, load.errors  # no non-2xx answer, no socket error, no timeout
    assert set(load.answers) == {"0", "1"}, load.answers  # both generations answered: they overlapped
    assert load.last["0"] < finished < load.last["1"]  # once finished, every answer is of the new one
    assert not old & set(srv.worker_pids())  # every process was replaced
    text = srv.stderr_text()
    assert f"{MODEL} (as installed, by test, generation 1)" in text
    assert text.count("replaced (") == 2  # each process replaced, one at a time
    assert generation(srv) == "1"


def test_an_activation_with_one_worker_switches_without_a_failed_request(servers, tmp_path):
    db = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    srv = servers(db)
    store = ServingStore(db)
    try:
        load, finished = under_load(srv, lambda: store.activate(MODEL, 3, by="test"), FINISHED)
    finally:
        store.close()
    assert load.failed == 0, load.errors
    assert set(load.answers) == {"0", "1"} and load.last["0"] < finished < load.last["1"]
    r = httpx.post(srv.url + PREDICT, json={}, timeout=10)
    assert r.headers["x-modelaas-model-version"] == "3" and r.headers["x-modelaas-generation"] == "1"


def test_a_new_process_that_fails_to_warm_leaves_the_old_ones_serving(servers, tmp_path):
    db = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    marker = tmp_path / "corrupt"
    srv = servers(db, "--workers", "2", env={"SLOW_WARM_FAIL": str(marker)})
    old = set(srv.worker_pids())
    store = ServingStore(db)
    try:
        marker.touch()  # from now on, warm() fails
        load, _ = under_load(srv, lambda: store.request_reload(MODEL), ABANDONED)
        assert load.failed == 0, load.errors
        assert set(load.answers) == {"0"}, load.answers  # the old processes answered everything
        assert old <= set(srv.worker_pids())
        assert "checkpoint file is corrupt" in srv.stderr_text()
        assert generation(srv) == "0"
        # the next change of the serving state tries again
        marker.unlink()
        store.request_reload(MODEL)
        wait_for(lambda: generation(srv) == "2" or None, timeout=60, what="generation 2")
    finally:
        store.close()
    assert srv.proc.poll() is None


@pytest.mark.parametrize("jobs_db", ["postgresql"], indirect=True)
def test_two_servers_on_one_postgresql_store_follow_it(servers, jobs_db):
    a = servers(jobs_db)
    b = servers(jobs_db)
    r = httpx.post(a.url + f"/v2/models/{MODEL}/reload", timeout=10)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["model"] == MODEL and body["active"] is None
    wanted = str(body["generation"])
    for srv in (a, b):
        wait_for(lambda srv=srv: generation(srv) == wanted or None, timeout=60, what=f"generation {wanted}")
    store = ServingStore(store_url(jobs_db, Path()))
    try:
        state = store.activate(MODEL, 7, by="test")
    finally:
        store.close()

    def follows(srv: ServerProcess) -> bool | None:
        r = httpx.post(srv.url + PREDICT, json={}, timeout=10)
        return r.headers.get("x-modelaas-model-version") == "7" or None

    for srv in (a, b):
        wait_for(lambda srv=srv: follows(srv), timeout=60, what="version 7")
        assert generation(srv) == str(state.generation)


ADMIN = "admin-token-0123456789abcd"
PREDICTOR = "predict-token-0123456789"


def test_the_reload_route_needs_the_admin_scope(servers, tmp_path):
    db = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    tokens = f"admin {hash_token(ADMIN)}; predict {hash_token(PREDICTOR)}"
    srv = servers(db, env={"MODELAAS_TOKENS": tokens})
    url = srv.url + f"/v2/models/{MODEL}/reload"
    assert httpx.post(url).status_code == 401
    r = httpx.post(url, headers={"Authorization": f"Bearer {PREDICTOR}"})
    assert r.status_code == 403 and "message" in r.json()
    r = httpx.post(srv.url + "/v2/models/nope/reload", headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 404 and "message" in r.json()
    r = httpx.post(url, headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 202 and r.json() == {"model": MODEL, "active": None, "generation": 1}

    def answered_by_generation_1() -> bool | None:
        r = httpx.post(srv.url + PREDICT, json={}, headers={"Authorization": f"Bearer {PREDICTOR}"}, timeout=10)
        return r.headers.get("x-modelaas-generation") == "1" or None

    wait_for(answered_by_generation_1, timeout=60, what="generation 1")


def test_reload_after_training_reloads_the_trained_model(servers, tmp_path):
    srv = servers(f"sqlite:///{tmp_path / 'jobs.sqlite3'}", "--reload-after-training")
    r = httpx.post(srv.url + f"/v2/models/{MODEL}/train/", json={}, timeout=10)
    assert r.status_code in (200, 201), r.text
    job = r.json()["uuid"]
    wait_for(lambda: generation(srv) == "1" or None, timeout=60, what="generation 1")
    assert f"Training {job} of {MODEL!r} finished: reload requested (generation 1)" in srv.stderr_text()
