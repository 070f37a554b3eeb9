"""The same training lifecycle on every jobs backend (local processes, Ray), and Ray's own parts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from starlette.testclient import TestClient

import support
from modelaas.errors import ConfigError
from modelaas.jobs.backends import make_backend
from modelaas.jobs.backends.ray_task import keeper_command, training_env
from modelaas.jobs.records import Job, JobStatus, new_job_id
from modelaas.jobs.store import JobStore, store_url
from modelaas.settings import Settings
from support import wait_status

URL = "/v2/models/trainer/train/"
SPAWNER = "/v2/models/backend-models/train/"


def job_processes(job_id: str) -> list[psutil.Process]:
    """Processes whose command line names the job (its training, and helpers given its folder).

    Not the Ray worker running the task: Ray titles it ``ray::modelaas-train-<job id>``.
    """
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if cmdline and cmdline[0].startswith("ray::"):
                continue
            if any(job_id in arg for arg in cmdline) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            pass
    return found


def argv(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:  # gone meanwhile, or a zombie
        return []


def cmdline(proc: psutil.Process) -> str:
    return " ".join(argv(proc))


def helper_started(job_id: str) -> list[psutil.Process]:
    """The job's processes once the Spawner model's helper runs (else nothing)."""
    found = job_processes(job_id)
    return found if any("time.sleep(600)" in cmdline(p) for p in found) else []


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    return support.wait_for(check, timeout=timeout, what=what)


def runner(client: TestClient, job_id: str) -> dict[str, Any]:
    job = client.app.state.modelaas.jobs.store.get(job_id)  # type: ignore[attr-defined]
    return dict(job.runner)


@pytest.fixture(params=["process", "ray"])
def jobs_backend(request: pytest.FixtureRequest) -> str:
    if request.param == "ray":
        request.getfixturevalue("ray_session")
    return str(request.param)


@pytest.fixture
def client(make_client: Callable[..., TestClient], jobs_backend: str) -> TestClient:
    return make_client("trainer:Trainer", jobs_backend=jobs_backend)


# --------------------------------------------------------------- the same lifecycle
def test_submit_run_and_finish(client: TestClient, jobs_backend: str) -> None:
    r = client.post(URL, data={"epochs": "3", "seconds": "0.1"})
    assert r.status_code == 200
    submitted = r.json()
    assert submitted["status"] in ("queued", "running") and submitted["args"]["epochs"] == 3
    assert set(submitted) >= {"uuid", "date", "args", "status"}
    uuid = submitted["uuid"]
    wait_status(client, URL + uuid, {"running", "done", "error"})
    done = wait_status(client, URL + uuid, {"done", "error"})
    assert done["status"] == "done", done
    assert done["result"]["output"]["epochs"] == 3
    assert done["progress"] == 1.0 and done["metrics"] == {"loss": 1 / 3}
    log = client.get(URL + uuid + "/logs").text
    for needle in ("starting", "epoch 3", "to stderr", "from a subprocess"):
        assert needle in log
    assert set(done["result"]) == {"output", "finish_date", "duration"}
    assert [j["uuid"] for j in client.get(URL).json()] == [uuid]
    files = client.get(URL + uuid + "/files").json()
    assert [f["path"] for f in files] == ["sub/log.csv", "weights.txt"]
    assert client.get(files[1]["href"]).text == "w=1\n"
    ran = runner(client, uuid)
    assert ran["backend"] == jobs_backend
    if jobs_backend == "ray":
        assert len(ran["task"]) == 48 and set(ran["task"]) <= set("0123456789abcdef")  # a Ray task id in hex


def test_errors_and_crashes_are_recorded(client: TestClient) -> None:
    failing = client.post(URL, data={"fail": "true", "epochs": "1"}).json()
    crashing = client.post(URL, data={"crash": "true"}).json()
    f = wait_status(client, URL + failing["uuid"], {"done", "error"})
    assert (f["status"], f["message"]) == ("error", "training diverged")
    assert "ValueError: training diverged" in client.get(URL + failing["uuid"] + "/logs").text
    c = wait_status(client, URL + crashing["uuid"], {"done", "error"})
    assert c["status"] == "error" and "SIGSEGV" in c["message"], c


def test_cancel_running_training(client: TestClient, jobs_backend: str) -> None:
    uuid = client.post(URL, data={"epochs": "1000", "seconds": "0.05"}).json()["uuid"]
    wait_status(client, URL + uuid, {"running"})

    def training() -> list[psutil.Process]:  # the child, not its keeper
        return [p for p in job_processes(uuid) if argv(p)[1:3] == ["-m", "modelaas.jobs.child"]]

    [child] = wait_until(training, 30, "the training's process")
    if jobs_backend == "ray":  # the task notes where the training runs: the keeper leads its group
        ran = wait_until(lambda: "pid" in runner(client, uuid) and runner(client, uuid), 10, "the runner note")
        assert ran["pid"] == os.getpgid(child.pid) != child.pid and ran["node"] and ran["host"]
    started = time.monotonic()
    r = client.delete(URL + uuid)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.json()
    assert r.json()["message"] == "Cancelled on request."
    wait_until(lambda: not job_processes(uuid), 5, "the training's processes to end")
    assert time.monotonic() - started < 5


def test_cancel_queued_then_delete_finished(client: TestClient) -> None:
    running = client.post(URL, data={"epochs": "1000", "seconds": "0.05"}).json()
    queued = client.post(URL, data={"epochs": "1"}).json()
    wait_status(client, URL + running["uuid"], {"running"})
    assert client.get(URL + queued["uuid"]).json()["status"] == "queued"
    for job in (queued, running):
        r = client.delete(URL + job["uuid"])
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert len(client.get(URL).json()) == 2  # cancelled records stay listed
    r = client.delete(URL + queued["uuid"])  # a finished job is removed
    assert r.status_code == 200 and client.get(URL + queued["uuid"]).status_code == 404


def test_unknown_job_and_bad_arguments(client: TestClient) -> None:
    assert client.get(URL + "nope").status_code == 404
    assert client.delete(URL + "nope").status_code == 404
    r = client.post(URL, data={"epochs": "0"})
    assert r.status_code == 422 and "epochs" in r.json()


def test_a_v2_models_training_output_is_captured(make_client: Callable[..., TestClient]) -> None:
    c = make_client("trainer", model_name="v2-trainer")
    record = c.post("/v2/models/v2-trainer/train/", data={"epoch_num": "3"}).json()
    assert record["args"] == {"epoch_num": 3, "seconds": 0.0}
    done = wait_status(c, "/v2/models/v2-trainer/train/" + record["uuid"], {"done", "error"})
    assert done["result"]["output"] == {"trained": 3}
    log = c.get("/v2/models/v2-trainer/train/" + record["uuid"] + "/logs").text
    assert log.count("epoch done") == 3 and "v2 training with" in log


def test_cancel_kills_a_training_that_ignores_it(
    make_client: Callable[..., TestClient], jobs_backend: str, backend_models: Path
) -> None:
    """It ignores SIGTERM's cancel: after the grace period it is killed, its helper process too."""
    c = make_client("backend_models:Spawner", jobs_backend=jobs_backend, train_cancel_grace=0.5)
    uuid = c.post(SPAWNER, data={"seconds": "60"}).json()["uuid"]
    wait_until(lambda: helper_started(uuid), 30, "the training and its helper")
    started = time.monotonic()
    r = c.delete(SPAWNER + uuid)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.json()
    wait_until(lambda: not job_processes(uuid), 5, "the training's processes to end")
    assert time.monotonic() - started < 5


def test_second_job_waits_for_the_first(client: TestClient) -> None:
    first = client.post(URL, data={"epochs": "10", "seconds": "0.1"}).json()["uuid"]
    second = client.post(URL, data={"epochs": "1"}).json()["uuid"]
    wait_status(client, URL + first, {"running"})
    while client.get(URL + first).json()["status"] == "running":
        assert client.get(URL + second).json()["status"] == "queued"
        time.sleep(0.05)
    a = client.get(URL + first).json()
    b = wait_status(client, URL + second, {"done", "error"})
    assert (a["status"], b["status"]) == ("done", "done")
    assert b["started_at"] >= a["finished_at"]


def test_training_environment_is_the_servers(
    make_client: Callable[..., TestClient], jobs_backend: str, backend_models: Path
) -> None:
    """Ray sets OMP_NUM_THREADS=1 (and more) for its workers; the training must not inherit it."""
    c = make_client("backend_models:EnvReporter", jobs_backend=jobs_backend)
    uuid = c.post(SPAWNER).json()["uuid"]
    done = wait_status(c, SPAWNER + uuid, {"done", "error"})
    assert done["status"] == "done", done
    seen = done["result"]["output"]
    assert seen["MODELAAS_JOBS_BACKEND"] == jobs_backend
    for name in ("OMP_NUM_THREADS", "PYTHONBREAKPOINT", "RAY_JOB_ID"):
        assert seen[name] == os.environ.get(name), name
    assert str(backend_models) in seen["PYTHONPATH"]


# ------------------------------------------------------------------- Ray's own parts
def test_ray_missing_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"--jobs-backend ray needs Ray: pip install 'modelaas\[ray\]'"):
        make_backend(Settings(data_dir=tmp_path, jobs_backend="ray"))


@pytest.mark.parametrize(
    ("worker", "server", "training"),
    [("", None, None), ("", "", ""), ("1", None, "1"), (None, None, None), (None, "0", None)],
)
def test_ray_blanked_accelerators_are_dropped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, worker: str | None, server: str | None, training: str | None
) -> None:
    """Older Ray sets CUDA_VISIBLE_DEVICES="" in tasks without GPUs: the training must still see the node's GPUs."""
    if worker is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", worker)
    env = training_env(Settings(data_dir=tmp_path), {"CUDA_VISIBLE_DEVICES": server})
    assert env.get("CUDA_VISIBLE_DEVICES") == training


def test_ray_kill_ends_the_training_with_its_worker(ray_session: Any, backend_models: Path, tmp_path: Path) -> None:
    """A forced cancel kills the Ray worker; the training sees its parent die and kills its group."""
    settings = Settings(data_dir=tmp_path, jobs_backend="ray", model="backend_models:Spawner", model_name="spawner")
    store = JobStore(store_url(None, tmp_path))
    store.migrate()
    backend = make_backend(settings)
    try:
        store.create(Job(id=new_job_id(), model="spawner", raw={"seconds": "60"}, owner="test"))
        job = store.claim_next("test", {"backend": "ray"})
        assert job is not None
        store.set_runner(job.id, backend.start(job))
        processes = wait_until(lambda: helper_started(job.id), 30, "the training and its helper")
        assert backend.poll(job.id) is None
        started = time.monotonic()
        backend.kill(job.id)
        _, alive = psutil.wait_procs(processes, timeout=5)
        assert not alive and time.monotonic() - started < 5
        how = wait_until(lambda: backend.poll(job.id), 10, "the task's end")
        assert how in ("Ray task cancelled", "Ray worker died"), how
        assert store.get(job.id).status is JobStatus.RUNNING  # the scheduler records the ending, not the backend
        backend.forget(job.id)
        assert backend.poll(job.id) == "unknown Ray task"
    finally:
        backend.close()
        store.close()
    assert ray_session.is_initialized()  # close() leaves a Ray it did not start alone


def test_ray_terminate_sends_sigterm_then_sigkill(ray_session: Any, backend_models: Path, tmp_path: Path) -> None:
    """Without the scheduler: terminate alone stops a training that ignores SIGTERM, after the grace."""
    settings = Settings(
        data_dir=tmp_path,
        jobs_backend="ray",
        model="backend_models:Spawner",
        model_name="spawner",
        train_cancel_grace=0.5,
    )
    store = JobStore(store_url(None, tmp_path))
    store.migrate()
    backend = make_backend(settings)
    try:
        store.create(Job(id=new_job_id(), model="spawner", raw={"seconds": "60"}, owner="test"))
        job = store.claim_next("test", {"backend": "ray"})
        assert job is not None
        store.set_runner(job.id, backend.start(job))
        processes = wait_until(lambda: helper_started(job.id), 30, "the training and its helper")
        backend.terminate(job.id)
        _, alive = psutil.wait_procs(processes, timeout=5)
        assert not alive
        how = wait_until(lambda: backend.poll(job.id), 10, "the task's end")
        assert how == f"signal {signal.SIGKILL.name}", how  # SIGTERM did not stop it; the task killed it
        backend.forget(job.id)
    finally:
        backend.close()
        store.close()


@pytest.mark.slow
def test_ray_server_with_its_own_local_ray(server: Callable[..., Any], ray_module: Any, backend_models: Path) -> None:
    """``modelaas serve --jobs-backend ray`` starts a local Ray at the first training and stops it at exit."""
    srv = server("--model", "trainer:Trainer", "--model-name", "trainer", "--jobs-backend", "ray")
    uuid = httpx.post(srv.url + URL, data={"epochs": "2"}, timeout=10).json()["uuid"]
    deadline = time.monotonic() + 60
    while (record := httpx.get(srv.url + URL + uuid, timeout=10).json())["status"] not in ("done", "error"):
        assert time.monotonic() < deadline, record
        time.sleep(0.1)
    assert record["status"] == "done", record
    rays = [p for p in psutil.Process(srv.proc.pid).children(recursive=True) if "ray" in cmdline(p)]
    assert any("gcs_server" in cmdline(p) for p in rays), [cmdline(p) for p in rays]
    srv.proc.send_signal(signal.SIGTERM)
    code, err = srv.wait_exit(timeout=60)
    assert code == 0, err
    _, alive = psutil.wait_procs(rays, timeout=15)
    assert not alive, [cmdline(p) for p in alive]


@pytest.mark.slow
def test_ray_server_on_a_cluster_leaves_it_running(
    server: Callable[..., Any], ray_session: Any, backend_models: Path
) -> None:
    """``--ray-address`` connects to a running Ray (here: this session's); the server's exit leaves it running."""
    address = ray_session.get_runtime_context().gcs_address
    srv = server(
        "--model", "trainer:Trainer", "--model-name", "trainer", "--jobs-backend", "ray", "--ray-address", address
    )
    uuid = httpx.post(srv.url + URL, data={"epochs": "2"}, timeout=10).json()["uuid"]
    deadline = time.monotonic() + 60
    while (record := httpx.get(srv.url + URL + uuid, timeout=10).json())["status"] not in ("done", "error"):
        assert time.monotonic() < deadline, record
        time.sleep(0.1)
    assert record["status"] == "done", record
    srv.proc.send_signal(signal.SIGTERM)
    code, err = srv.wait_exit(timeout=60)
    assert code == 0, err

    @ray_session.remote(num_cpus=0)
    def still_there() -> str:
        return "yes"

    assert ray_session.get(still_there.remote(), timeout=30) == "yes"


# ------------------------------------------------------------- the keeper, without Ray
def start_keeper(code: str, marker: str) -> tuple[Any, int]:
    """The keeper running ``python -c code marker`` in a new group; (keeper, read end of its status pipe)."""
    read_fd, write_fd = os.pipe()
    keeper = subprocess.Popen(
        keeper_command(write_fd, [sys.executable, "-c", code, marker]), start_new_session=True, pass_fds=(write_fd,)
    )
    os.close(write_fd)
    return keeper, read_fd


@pytest.mark.parametrize(
    ("code", "status"),
    [("import sys; sys.exit(3)", b"3\n"), ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", b"-11\n")],
)
def test_keeper_reports_how_the_training_ended(code: str, status: bytes) -> None:
    keeper, read_fd = start_keeper(code, "x")
    assert keeper.wait(timeout=10) == 0
    assert os.read(read_fd, 32) == status
    os.close(read_fd)


def test_keeper_leaves_sigterm_to_the_training(tmp_path: Path) -> None:
    code = (
        "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(7)); "
        "pathlib.Path(sys.argv[1], 'handler-set').touch(); time.sleep(60)"
    )
    keeper, read_fd = start_keeper(code, str(tmp_path))
    [training] = wait_until(lambda: job_processes(str(tmp_path))[1:], 10, "the training")  # [keeper, training]
    wait_until(lambda: (tmp_path / "handler-set").exists(), 10, "the training's SIGTERM handler")
    os.killpg(keeper.pid, signal.SIGTERM)
    assert keeper.wait(timeout=10) == 0
    assert os.read(read_fd, 32) == b"7\n"
    os.close(read_fd)
    assert not training.is_running()


def test_keeper_kills_its_group_when_the_worker_dies(tmp_path: Path) -> None:
    """Should Ray leave the keeper alive when its worker dies, the keeper stops the training itself."""
    worker = subprocess.Popen(  # stands for the Ray worker: starts the keeper, then waits
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time\n"
            "from modelaas.jobs.backends.ray_task import keeper_command\n"
            "from modelaas.jobs.ids import PARENT_PID_ENV\n"
            "r, w = os.pipe()\n"
            "code = 'import time; time.sleep(600)'\n"
            "env = {**os.environ, PARENT_PID_ENV: str(os.getpid())}\n"
            "cmd = keeper_command(w, [sys.executable, '-c', code, sys.argv[1]])\n"
            "subprocess.Popen(cmd, start_new_session=True, pass_fds=(w,), env=env)\n"
            "time.sleep(600)\n",
            str(tmp_path),
        ],
        start_new_session=True,
    )
    try:
        processes = wait_until(lambda: len(job_processes(str(tmp_path))) == 3 and job_processes(str(tmp_path)), 20, "")
        assert worker.pid in [p.pid for p in processes]
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        _, alive = psutil.wait_procs(processes, timeout=5)
        assert not alive
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
