"""The durability promises of training jobs, checked with real ``modelaas serve`` processes.

Trainings run the ``durable`` fixture model: each starts a grandchild process that
ignores SIGTERM (only killing the whole tree stops it) and whose command line carries a
per-test marker and the job's id. Everything is on loopback and bounded by timeouts.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest

from modelaas.jobs.records import JobStatus
from modelaas.jobs.store import JobStore, store_url
from support import wait_for

pytestmark = pytest.mark.slow

MODEL = "durable"
SERVE = ("--model", "durable:Durable")
TRAIN = f"/v2/models/{MODEL}/train/"
PREDICT = f"/v2/models/{MODEL}/predict/"
GONE_WITHIN = 5.0
DEEPAAS_KEYS = {"uuid", "date", "args", "status"}
DEEPAAS_RESULT_KEYS = {"output", "finish_date", "duration"}

T = TypeVar("T")


# ---------------------------------------------------------------------- helpers
def submit(url: str, **args: Any) -> dict[str, Any]:
    r = httpx.post(url + TRAIN, data={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in args.items()})
    assert r.status_code == 200, r.text
    record: dict[str, Any] = r.json()
    return record


def record(url: str, job_id: str) -> dict[str, Any]:
    r = httpx.get(url + TRAIN + job_id, timeout=10)
    assert r.status_code == 200, r.text
    rec: dict[str, Any] = r.json()
    return rec


def listed(url: str) -> dict[str, dict[str, Any]]:
    r = httpx.get(url + TRAIN, timeout=10)
    assert r.status_code == 200, r.text
    return {rec["uuid"]: rec for rec in r.json()}


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def matching(*needles: str) -> list[psutil.Process]:
    """Live processes whose command line contains any of ``needles``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        command = " ".join(proc.info["cmdline"] or ())
        if any(n in command for n in needles) and alive(proc):
            found.append(proc)
    return found


def running_tree(url: str, job_id: str, marker: str, *, timeout: float = 60) -> list[psutil.Process]:
    """Wait until the job runs and its grandchild is up; its processes (training first)."""

    def ready() -> list[psutil.Process] | None:
        rec = record(url, job_id)
        assert rec["status"] in ("queued", "running"), rec
        pids = rec.get("metrics") or {}
        if rec["status"] != "running" or "grandchild" not in pids:
            return None
        training, grandchild = psutil.Process(pids["pid"]), psutil.Process(pids["grandchild"])
        command = " ".join(grandchild.cmdline())
        if marker not in command or job_id not in command:
            return None  # not exec'd yet
        assert job_id in " ".join(training.cmdline())
        return [training, *training.children(recursive=True)]

    return wait_for(ready, timeout=timeout, what=f"training {job_id} and its grandchild to run")


def serving_pids(srv: Any) -> list[int]:
    """The server's serving processes (its other children are trainings)."""
    return [pid for pid in srv.worker_pids() if "modelaas.jobs.child" not in " ".join(psutil.Process(pid).cmdline())]


def assert_all_gone(procs: list[psutil.Process], *needles: str, within: float = GONE_WITHIN) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(alive(p) for p in procs) and not matching(*needles):
            return
        time.sleep(0.05)
    left = [(p.pid, " ".join(p.cmdline())) for p in [*procs, *matching(*needles)] if alive(p)]
    raise AssertionError(f"processes left {within} s later: {left}")


def assert_deepaas_record(rec: dict[str, Any], status: str) -> None:
    assert set(rec) >= DEEPAAS_KEYS, rec
    assert rec["status"] == status, rec
    assert isinstance(rec["uuid"], str) and isinstance(rec["date"], str) and isinstance(rec["args"], dict)
    assert set(rec["result"]) >= DEEPAAS_RESULT_KEYS, rec
    assert rec["result"]["finish_date"] and rec["result"]["duration"], rec


def kill_trees(procs: list[psutil.Process]) -> None:
    """SIGKILL the process groups of ``procs`` (trainings run in their own groups)."""
    ours = os.getpgid(0)
    for proc in procs:
        try:
            group = os.getpgid(proc.pid)
            if group != ours and alive(proc):
                os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.fixture
def marker() -> Iterator[str]:
    """A token on the command line of this test's grandchildren; whatever a failing test
    leaves behind is killed afterwards."""
    token = f"durable-{uuid.uuid4().hex}"
    yield token
    kill_trees(matching(token))


@pytest.fixture
def shared_pg(pg_database: str) -> Iterator[str]:
    """The session's PostgreSQL database, emptied after the test (as ``jobs_db`` does)."""
    import sqlalchemy as sa

    yield pg_database
    engine = sa.create_engine("postgresql+psycopg://" + pg_database.split("://", 1)[1])
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TABLE IF EXISTS modelaas_jobs, modelaas_job_events, modelaas_servers, modelaas_schema"
        )
    engine.dispose()


# ------------------------------------------------------------------------ tests
def test_kill_9_of_the_server_kills_every_training_tree_and_a_restart_reports_them(server, marker):
    srv = server(*SERVE, "--train-workers", "3")
    ids = [submit(srv.url, marker=marker, seconds=120)["uuid"] for _ in range(3)]
    procs = [p for job_id in ids for p in running_tree(srv.url, job_id, marker)]
    assert len(procs) == 6  # three trainings, three grandchildren
    procs += [psutil.Process(pid) for pid in serving_pids(srv)]

    srv.proc.kill()  # SIGKILL: the supervisor cannot clean up
    srv.proc.wait(timeout=10)  # reaped, as its parent (systemd, docker) would
    assert_all_gone(procs, marker, *ids)

    again = server(*SERVE, port=srv.port)  # a restart, on the same port
    jobs = listed(again.url)
    assert set(ids) <= set(jobs)
    for job_id in ids:
        rec = jobs[job_id]
        assert rec["status"] == "interrupted", rec
        assert rec["message"], rec
        assert rec["result"]["finish_date"], rec


def test_kill_9_of_the_server_while_a_training_starts_leaves_no_training(server, marker):
    """The training process is still importing when its parent dies: it must notice anyway."""
    srv = server(*SERVE)
    job_id = submit(srv.url, marker=marker, seconds=120)["uuid"]

    def starting() -> psutil.Process | None:
        for proc in psutil.Process(srv.proc.pid).children():
            try:
                if job_id in " ".join(proc.cmdline()):
                    return proc
            except psutil.NoSuchProcess:
                pass
        return None

    training = wait_for(starting, timeout=30, what="the training process to start", every=0.002)
    srv.proc.kill()
    srv.proc.wait(timeout=10)
    try:
        assert_all_gone([training], marker, job_id)
    finally:
        kill_trees([training])

    again = server(*SERVE)
    assert record(again.url, job_id)["status"] == "interrupted"


@pytest.mark.parametrize("ignore_cancel", [False, True], ids=["cooperative", "ignores-cancel"])
def test_delete_of_a_running_training_cancels_it_and_stops_its_tree(server, marker, tmp_path, ignore_cancel):
    # The model that ignores the cancel is killed after the grace period; the cooperative
    # one gets a long grace, so that only stopping by itself answers within GONE_WITHIN.
    grace = 1 if ignore_cancel else 30
    srv = server(*SERVE, "--train-cancel-grace", str(grace))
    job_id = submit(srv.url, marker=marker, seconds=120, ignore_cancel=ignore_cancel)["uuid"]
    procs = running_tree(srv.url, job_id, marker)

    asked = time.monotonic()
    r = httpx.delete(srv.url + TRAIN + job_id, timeout=60)
    waited = time.monotonic() - asked
    assert r.status_code == 200, r.text
    answer = r.json()
    assert_deepaas_record(answer, "cancelled")
    assert answer["uuid"] == job_id and answer["args"]["marker"] == marker
    assert_all_gone(procs, marker, job_id)

    stopped = tmp_path / "data" / "jobs" / job_id / "output" / "stopped.txt"
    if ignore_cancel:
        assert not stopped.exists()
    else:  # it stopped by itself (its leftover grandchild was killed), not after the grace
        assert stopped.exists()
        assert waited < GONE_WITHIN, f"the cooperative training took {waited:.1f} s to stop"
    assert listed(srv.url)[job_id]["status"] == "cancelled"
    assert record(srv.url, job_id)["status"] == "cancelled"


def test_sigterm_finishes_the_prediction_and_records_the_training_interrupted(server, marker, tmp_path):
    srv = server(*SERVE)
    job_id = submit(srv.url, marker=marker, seconds=120)["uuid"]
    procs = running_tree(srv.url, job_id, marker)
    procs += [psutil.Process(pid) for pid in serving_pids(srv)]
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, srv.url + PREDICT, data={"seconds": "2"}, timeout=60)
        time.sleep(0.5)  # the prediction is in flight
        srv.proc.send_signal(signal.SIGTERM)
        answer = pending.result()
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == {"slept": 2.0}

    code, err = srv.wait_exit(timeout=60)
    print(err)
    assert code == 0, err
    assert "Traceback" not in err, err
    assert_all_gone(procs, marker, job_id)
    assert not psutil.pid_exists(srv.proc.pid)

    store = JobStore(store_url(None, tmp_path / "data"))
    try:
        job = store.get(job_id)
    finally:
        store.close()
    assert job is not None
    assert job.status is JobStatus.INTERRUPTED, job
    assert job.message


def _median_predict_latency(client: httpx.Client, url: str, n: int = 50) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        r = client.post(url + PREDICT)
        times.append(time.perf_counter() - start)
        assert r.status_code == 200, r.text
    return statistics.median(times)


def test_a_cpu_busy_training_does_not_slow_predictions_down(server, marker):
    srv = server(*SERVE, "--workers", "2")
    with httpx.Client(timeout=30) as client:
        _median_predict_latency(client, srv.url, 10)  # warm both processes and the connection
        idle = _median_predict_latency(client, srv.url)
        job_id = submit(srv.url, marker=marker, seconds=120, burn=True)["uuid"]
        (training, *_) = running_tree(srv.url, job_id, marker)
        wait_for(lambda: training.cpu_percent(0.2) > 50, timeout=10, what="the training to burn CPU")
        busy = _median_predict_latency(client, srv.url)
        assert record(srv.url, job_id)["status"] == "running"
    print(f"\npredict latency median: idle {idle * 1000:.2f} ms, during training {busy * 1000:.2f} ms")
    assert busy <= 2 * idle, f"idle {idle * 1000:.2f} ms, busy {busy * 1000:.2f} ms"


def test_two_servers_share_a_postgresql_store(shared_pg, server, marker, tmp_path):
    args = (*SERVE, "--jobs-db", shared_pg, "--train-cancel-grace", "1")
    a = server(*args)
    b = server(*args, "--data-dir", str(tmp_path / "data-b"))  # the last --data-dir wins
    job_id = submit(a.url, marker=marker, seconds=120)["uuid"]
    procs = running_tree(a.url, job_id, marker)
    assert procs[0].ppid() == a.proc.pid  # it runs on A

    assert listed(b.url)[job_id]["status"] == "running"
    start = time.monotonic()
    r = httpx.delete(b.url + TRAIN + job_id, timeout=30)
    assert r.status_code == 200, r.text
    assert_deepaas_record(r.json(), "cancelled")
    assert time.monotonic() - start < 10
    assert_all_gone(procs, marker, job_id)
    assert listed(a.url)[job_id]["status"] == "cancelled"
    assert listed(b.url)[job_id]["status"] == "cancelled"


def test_an_unreachable_job_store_stops_start_up(server):
    srv = server(*SERVE, "--jobs-db", "postgresql://nobody@127.0.0.1:1/none", ready=False)
    code, err = srv.wait_exit(timeout=60)
    assert code != 0
    assert "Cannot open job store" in err and "127.0.0.1:1" in err, err
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) <= 3, err


@pytest.mark.parametrize("given", [None, "false"], ids=["default", "set-by-user"])
def test_trainings_run_nicer_than_serving_and_with_gpu_memory_growth(server, marker, monkeypatch, given):
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
    srv = server(*SERVE, env=None if given is None else {"TF_FORCE_GPU_ALLOW_GROWTH": given})
    job_id = submit(srv.url, marker=marker, seconds=120)["uuid"]
    training, *_ = running_tree(srv.url, job_id, marker)
    (worker,) = serving_pids(srv)
    assert training.nice() > psutil.Process(worker).nice()
    assert training.nice() > psutil.Process(srv.proc.pid).nice()
    environ = Path(f"/proc/{training.pid}/environ").read_bytes().split(b"\0")
    assert f"TF_FORCE_GPU_ALLOW_GROWTH={given or 'true'}".encode() in environ
