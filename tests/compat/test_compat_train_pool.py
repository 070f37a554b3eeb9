"""A training that opens a ``multiprocessing`` pool (fork) per round (corpus package compat-train-pool).

Equal under both servers: 40 rounds of ``with Pool(2) as pool: pool.map(...)`` end ``done``
within a bounded time (60 s), with the same output. modelaas also keeps the training's log:
it must hold no traceback (pool workers stopped by a signal handler they inherited print one).

Cancelling is checked on modelaas only: DEEPaaS 2.6.0 answers a DELETE of a running training
with a 500 (docs/guide.md, "What modelaas does differently") and leaves the pool's workers
running, orphaned; both are pinned here. modelaas must answer the record, ``cancelled``, and
stop the training and every worker of its pool.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psutil
import pytest

from support import wait_for
from support_deepaas import ACTIVE, alive, modelaas_log, outcome, submit, train_both, train_url

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MODEL = "compat-train-pool"
ROUNDS = 40
TASKS = 8  # per round, in the model
STOP_TIMEOUT = 30  # seconds for a cancelled training's processes to be gone


def test_a_training_opening_pools_again_and_again_finishes(serve):
    servers = serve(MODEL)
    theirs, ours = train_both(servers, MODEL, timeout=60, data={"rounds": str(ROUNDS)})
    base = servers["modelaas"].url
    log = modelaas_log(base, MODEL, ours["uuid"])
    if ours["status"] in ACTIVE:  # stuck: stop it, so that the next training does not wait behind it
        httpx.delete(train_url(base, MODEL, ours["uuid"]), timeout=60)
    expected = {"rounds": ROUNDS, "sum_of_squares": ROUNDS * sum(n * n for n in range(TASKS))}
    assert theirs["status"] == "done", outcome(theirs)
    assert theirs["result"]["output"] == expected
    assert ours["status"] == "done", f"{outcome(ours)}\nits log:\n{log[-4000:]}"
    assert ours["result"]["output"] == expected
    assert "Traceback" not in log, log[-4000:]


def _pool_processes(pid_dir: Path) -> list[psutil.Process] | None:
    """The training and its pool's two workers, once all three have said they are there."""
    names = [p.name for p in pid_dir.iterdir()]
    trainings = [n for n in names if n.startswith("training-")]
    workers = [n for n in names if n.startswith("worker-")]
    if len(trainings) < 1 or len(workers) < 2:
        return None
    return [psutil.Process(int(n.rsplit("-", 1)[1])) for n in trainings + workers]


def _cancel_inside_a_pool(base: str, pid_dir: Path) -> tuple[httpx.Response, list[psutil.Process]]:
    """Start a training that waits inside its pool; once it does, DELETE it: (the answer, its processes)."""
    pid_dir.mkdir()
    data = {"rounds": "1", "workers": "2", "hold": "600", "pid_dir": str(pid_dir)}
    job = submit(base, MODEL, data=data)["uuid"]
    procs = wait_for(lambda: _pool_processes(pid_dir), timeout=60, what="the training and its pool's two workers")
    return httpx.delete(train_url(base, MODEL, job), timeout=60), procs


def test_cancelling_a_training_inside_a_pool_stops_all_its_processes(serve, tmp_path):
    servers = serve(MODEL)
    theirs, their_procs = _cancel_inside_a_pool(servers["deepaas"].require(), tmp_path / "deepaas")
    assert theirs.status_code == 500, theirs.text

    ours, procs = _cancel_inside_a_pool(servers["modelaas"].require(), tmp_path / "modelaas")
    try:
        assert ours.status_code == 200, ours.text
        assert ours.json()["status"] == "cancelled", ours.json()
        deadline = time.monotonic() + STOP_TIMEOUT
        while alive(procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [(p.pid, " ".join(p.cmdline())) for p in alive(procs)]
        assert left == [], f"processes of the cancelled training still running after {STOP_TIMEOUT} s: {left}"
    finally:
        for proc in alive(procs):  # a failure leaves nothing behind
            proc.kill()
    # DEEPaaS killed its worker process, not the pool's workers: they are still there (until teardown)
    assert len(alive(their_procs[1:])) == 2
