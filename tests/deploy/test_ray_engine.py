"""``modelaas serve --engine ray``: the app as Ray Serve replicas on a local Ray cluster at 127.0.0.1.

One Ray cluster (``ray start --head --num-cpus 2``, in a temp dir of its own) serves the whole
module and is stopped after it; one server runs the scenario: two replicas both answer, a
killed replica is replaced while a client keeps asking, SIGTERM leaves no actor behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelaas.errors import ConfigError
from modelaas.jobs.store import open_store
from modelaas.serve.ray_engine import RayEngine
from modelaas.serve.ray_replica import REPLICA_HEADER
from modelaas.settings import Settings
from support import free_port, wait_status

if not os.environ.get("CI"):  # in CI, a missing Ray Serve fails the tests
    pytest.importorskip("ray.serve", reason="needs modelaas[ray]")
TOKEN = "a-long-enough-test-token-for-predict"
# Ray's own token lives in ~/.ray, shared by every Ray on the machine; this cluster listens on loopback only
RAY_ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}
# the cluster's workers import the fixture models as a serving process does
FIXTURE_MODELS = str(Path(__file__).resolve().parents[1] / "fixtures" / "models")
RAY_ENV["PYTHONPATH"] = os.pathsep.join(filter(None, [FIXTURE_MODELS, os.environ.get("PYTHONPATH")]))


def test_sqlite_is_refused_when_replicas_can_span_machines(tmp_path):
    settings = Settings(data_dir=tmp_path, engine="ray", ray_address="127.0.0.1:6379")
    with pytest.raises(ConfigError, match="cannot share a SQLite job store"):
        RayEngine(settings)
    with pytest.raises(ConfigError, match="cannot share a SQLite job store"):
        RayEngine(Settings(data_dir=tmp_path, ray_address="auto", jobs_db=f"sqlite:///{tmp_path}/j.db"))
    # a private Ray on this machine can share the SQLite file; PostgreSQL is always fine
    assert RayEngine(Settings(data_dir=tmp_path, engine="ray")).settings.jobs_backend == "ray"
    RayEngine(Settings(data_dir=tmp_path, ray_address="x:1", jobs_db="postgresql://u@h/db"))


def test_the_cli_refuses_sqlite_on_a_cluster_before_starting_anything(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "modelaas", "serve", "--engine", "ray", "--ray-address", "127.0.0.1:1",
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "--jobs-db postgresql://" in proc.stderr


def test_a_taken_port_is_refused_before_ray_starts(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "modelaas", "serve", "--engine", "ray", "--listen-port", str(port),
             "--data-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 2 and f"Port {port} on 127.0.0.1 is already in use" in proc.stderr
    assert "Ray" not in proc.stderr  # refused before Ray was started


def test_autoscaling_bounds_are_checked():
    with pytest.raises(ConfigError, match="max_replicas"):
        Settings(engine="ray", min_replicas=3, max_replicas=2)


# ----------------------------------------------------------------- on a Ray cluster
def _ray_processes(temp_dir: str, gcs_port: int | None = None) -> list:
    """The cluster's own processes: those naming its temp dir (or, given, its GCS port: Ray's client server)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            args = proc.info["cmdline"] or []
            if temp_dir in " ".join(args) or (
                gcs_port is not None and any(a.startswith("--address=") and a.endswith(f":{gcs_port}") for a in args)
            ):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[tuple[str, str]]:
    """A Ray head on 127.0.0.1 with 2 CPUs: (address, temp dir); everything of it is stopped after."""
    import psutil

    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    temp_dir = tempfile.mkdtemp(prefix="mr-", dir="/tmp")  # short: Ray's socket paths have a length limit
    port = free_port()
    start = subprocess.run(
        [ray_bin, "start", "--head", "--num-cpus", "2", "--node-ip-address", "127.0.0.1", "--port", str(port),
         "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", temp_dir,
         "--object-store-memory", str(100 * 1024 * 1024), "--ray-client-server-port", str(free_port()),
         # free ports rather than Ray's fixed defaults, which another Ray on the machine may hold
         "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
         "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port())],
        capture_output=True, text=True, timeout=180, start_new_session=True, env=RAY_ENV,
    )  # fmt: skip
    assert start.returncode == 0, start.stderr
    try:
        yield f"127.0.0.1:{port}", temp_dir
    finally:
        head = _ray_processes(temp_dir, port)
        workers = [c for p in head for c in _children(p)]
        for proc in head + workers:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(head + workers, timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _children(proc) -> list:
    import psutil

    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _serve_actors(temp_dir: str) -> list[str]:
    """Ray Serve's processes (controller, proxies, replicas) on the cluster's node."""
    names = []
    for proc in _ray_processes(temp_dir):
        for child in _children(proc):
            try:
                title = " ".join(child.cmdline())
            except Exception:
                continue
            if title.startswith(("ray::Serve", "ray::ProxyActor")):
                names.append(title)
    return names


def _replica_pids(temp_dir: str) -> list[int]:
    pids = []
    for proc in _ray_processes(temp_dir):
        for child in _children(proc):
            try:
                if " ".join(child.cmdline()).startswith("ray::ServeReplica"):
                    pids.append(child.pid)
            except Exception:
                continue
    return pids


class Asker(threading.Thread):
    """A client that keeps asking /readyz until stopped: answers by replica, failures counted."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.replicas, self.failures, self.answers = url, threading.Event(), [], 0, 0

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    r = client.get(self.url + "/readyz")
                    if r.status_code == 200:
                        self.answers += 1
                        self.replicas.append(r.headers[REPLICA_HEADER])
                    else:
                        self.failures += 1
                except httpx.HTTPError:
                    self.failures += 1
                time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_replicas_serve_are_replaced_when_killed_and_leave_nothing_behind(
    ray_cluster, pg_database, tmp_path, record_property
):
    address, temp_dir = ray_cluster
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**RAY_ENV, "MODELAAS_TOKENS": f"predict,train {TOKEN}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelaas", "serve", "--engine", "ray", "--ray-address", address, "--replicas", "2",
         "--jobs-db", pg_database, "--listen-port", str(port), "--data-dir", str(tmp_path / "data")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while not any("modelaas is ready on" in line for line in log):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(log)
            time.sleep(0.2)

        # the same routes and access rules as the process engine
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/v2/models/").status_code == 401
            r = client.get("/v2/models/", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200 and r.headers["x-request-id"] and r.headers[REPLICA_HEADER]
            assert client.get("/readyz").json()["status"] == "ready"  # each replica warmed before it answered

            # a training queued through a replica runs as a Ray task, recorded in the shared store
            client.headers["Authorization"] = f"Bearer {TOKEN}"
            r = client.post("/v2/models/modelaas-demo/train/", data={"epochs": "2", "epoch_seconds": "0"})
            assert r.status_code in (200, 201), r.text
            job = r.json()
            done = wait_status(client, "/v2/models/modelaas-demo/train/" + job["uuid"], {"done", "error"}, timeout=120)
            assert done["status"] == "done", done
            store = open_store(Settings(jobs_db=pg_database, data_dir=tmp_path / "data"))
            try:
                assert store.get(job["uuid"]).runner["backend"] == "ray"
            finally:
                store.close()

        # two replicas both answer
        asker = Asker(url)
        asker.start()
        deadline = time.monotonic() + 60
        while len(set(asker.replicas)) < 2:
            assert time.monotonic() < deadline, f"one replica answered: {set(asker.replicas)}"
            time.sleep(0.1)
        before = set(asker.replicas)

        # a killed replica is replaced while the client keeps asking
        (victim, *_) = _replica_pids(temp_dir)
        os.kill(victim, signal.SIGKILL)
        killed_at = len(asker.replicas)
        deadline = time.monotonic() + 120
        while not set(asker.replicas[killed_at:]) - before:
            assert time.monotonic() < deadline, "no replica replaced the killed one"
            time.sleep(0.1)
        time.sleep(1)
        asker.stop.set()
        asker.join(15)
        record_property("requests", asker.answers + asker.failures)
        record_property("failed_requests", asker.failures)
        print(f"replica killed: {asker.failures} of {asker.answers + asker.failures} requests failed")
        assert len(asker.replicas) > killed_at  # answers went on after the kill
        assert asker.failures <= max(5, (asker.answers + asker.failures) // 10)
        assert len(set(asker.replicas[killed_at:])) >= 1

        # SIGTERM: the server exits and no Serve actor stays on the cluster
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, "".join(log)
        deadline = time.monotonic() + 30
        while _serve_actors(temp_dir):
            assert time.monotonic() < deadline, _serve_actors(temp_dir)
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        reader.join(10)
        proc.stdout.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_model_that_cannot_load_stops_start_up_with_its_error(ray_cluster, pg_database, tmp_path):
    address, temp_dir = ray_cluster
    proc = subprocess.run(
        [sys.executable, "-m", "modelaas", "serve", "--engine", "ray", "--ray-address", address,
         "--model", "broken_import", "--jobs-db", pg_database, "--listen-port", str(free_port()),
         "--data-dir", str(tmp_path / "data")],
        env=RAY_ENV, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-3000:]
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert "the Ray Serve replicas did not start" in error and "a_module_that_does_not_exist_anywhere" in error
    deadline = time.monotonic() + 30
    while _serve_actors(temp_dir):
        assert time.monotonic() < deadline, _serve_actors(temp_dir)
        time.sleep(0.5)
