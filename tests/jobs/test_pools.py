"""Trainings that use multiprocessing pools finish, log no stopped workers, and cancel as a whole tree."""

from __future__ import annotations

import psutil
import pytest

from support import wait_for

pytestmark = pytest.mark.slow

URL = "/v2/models/pool-trainer/train/"


def _record(client, uuid):
    return client.get(URL + uuid).json()


def _ended(client, uuid):
    record = _record(client, uuid)
    return record if record["status"] not in ("queued", "running") else None


def test_a_training_opening_pools_finishes_without_worker_tracebacks(make_client):
    client = make_client("pool_trainer")
    uuid = client.post(URL, data={"rounds": "40"}).json()["uuid"]
    record = wait_for(lambda: _ended(client, uuid), timeout=90, what="the training to end")
    assert record["status"] == "done", record
    assert record["result"]["output"] == {"total": 40 * 140, "rounds": 40}
    log = client.get(URL + uuid + "/logs").text
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log


def test_a_child_stopped_the_moment_it_is_forked_stops(make_client):
    """No window after a fork where the training's handler is still there and SIGTERM gets lost."""
    client = make_client("pool_trainer")
    uuid = client.post(URL, data={"forks": "30"}).json()["uuid"]
    record = wait_for(lambda: _ended(client, uuid), timeout=200, what="the training to end")
    assert record["status"] == "done", record
    assert record["result"]["output"] == {"forks": 30, "survivors": 0}


def test_cancelling_a_training_inside_a_pool_stops_every_process(make_client):
    client = make_client("pool_trainer")
    uuid = client.post(URL, data={"rounds": "0", "sleep": "600"}).json()["uuid"]
    wait_for(lambda: "workers sleeping" in client.get(URL + uuid + "/logs").text, timeout=60, what="the pool")
    pid = client.app.state.modelaas.jobs.store.get(uuid).runner["pid"]  # type: ignore[attr-defined]
    tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    assert len(tree) >= 3  # the training and its two pool workers
    assert client.delete(URL + uuid).json()["status"] == "cancelled"
    _, alive = psutil.wait_procs(tree, timeout=30)
    assert alive == []
    wait_for(lambda: _ended(client, uuid), timeout=30, what="the record to end")
    assert "Traceback" not in client.get(URL + uuid + "/logs").text
