"""The battery, training trees: what a training starts ends with it, even a daemon.

Trainings run the ``escaping`` fixture model, whose daemon leaves the training's process
group and session (double fork, ``setsid``) and ignores SIGTERM. Finding: such processes
survived a cancel and ``kill -9`` of the server.
"""

from __future__ import annotations

import signal
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest

from support import wait_for

pytestmark = pytest.mark.slow

SERVE = ("--model", "escaping:Escaping")
TRAIN = "/v2/models/escaping/train/"
GONE_WITHIN = 5.0


@pytest.fixture
def marker() -> Iterator[str]:
    """A token on the command line of this test's daemons; whatever is left is killed afterwards."""
    token = f"escaping-{uuid.uuid4().hex}"
    yield token
    for proc in daemons(token):
        proc.kill()


def daemons(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or ()) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def record(url: str, job_id: str) -> dict[str, Any]:
    r = httpx.get(url + TRAIN + job_id, timeout=30)
    assert r.status_code == 200, r.text
    rec: dict[str, Any] = r.json()
    return rec


def start(url: str, marker: str, **args: Any) -> tuple[str, psutil.Process]:
    """Submit a training; wait for its daemon; the job's id and the daemon."""
    data = {"marker": marker, **{k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in args.items()}}
    r = httpx.post(url + TRAIN, data=data, timeout=30)
    assert r.status_code == 200, r.text
    job_id = str(r.json()["uuid"])
    metrics = wait_for(
        lambda: record(url, job_id).get("metrics", {}).get("daemon") and record(url, job_id)["metrics"],
        timeout=60,
        what="the training's daemon",
    )
    daemon = psutil.Process(metrics["daemon"])
    assert marker in " ".join(daemon.cmdline())
    assert daemon.pid in {p.pid for p in daemons(marker)}  # alive, before anything happens
    return job_id, daemon


def assert_gone(daemon: psutil.Process, marker: str) -> None:
    def gone() -> bool:
        try:
            return not daemon.is_running() or daemon.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(lambda: gone() and not daemons(marker), timeout=GONE_WITHIN, what="the daemon to be gone")


def wait_final(url: str, job_id: str) -> dict[str, Any]:
    return wait_for(
        lambda: (rec := record(url, job_id))["status"] not in ("queued", "running") and rec,
        timeout=60,
        what="the training to end",
    )


def test_a_daemon_left_by_a_finished_training_is_stopped(server, marker):
    srv = server(*SERVE)
    job_id, daemon = start(srv.url, marker, seconds=1)
    assert wait_final(srv.url, job_id)["status"] == "done"
    assert_gone(daemon, marker)


@pytest.mark.parametrize("ignore_cancel", [False, True], ids=["cooperative", "ignores-cancel"])
def test_cancel_stops_the_daemon_too(server, marker, ignore_cancel):
    srv = server(*SERVE, "--train-cancel-grace", "1")
    job_id, daemon = start(srv.url, marker, seconds=120, ignore_cancel=ignore_cancel)
    r = httpx.delete(srv.url + TRAIN + job_id, timeout=60)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert_gone(daemon, marker)


def test_a_crashed_training_leaves_no_daemon(server, marker):
    srv = server(*SERVE)
    job_id, daemon = start(srv.url, marker, seconds=120, crash=True)
    final = wait_final(srv.url, job_id)
    assert final["status"] == "error" and "SIGKILL" in final["message"], final
    assert_gone(daemon, marker)


def test_kill_9_of_the_server_stops_the_daemon_too(server, marker):
    srv = server(*SERVE)
    _, daemon = start(srv.url, marker, seconds=120)
    srv.proc.send_signal(signal.SIGKILL)
    time.sleep(0.1)
    assert_gone(daemon, marker)


def test_a_process_forked_by_a_prediction_neither_delays_stop_nor_keeps_the_port(server):
    """Finding: a process forked by model code kept the listening socket: stopping took 35 s
    and the port stayed bound."""
    srv = server("--model", "forking:Forking")
    r = httpx.post(srv.url + "/v2/models/forking/predict/", data={"seconds": "120"}, timeout=30)
    assert r.status_code == 200, r.text
    forked = psutil.Process(r.json()["predictions"]["forked"])
    assert forked.is_running()
    asked = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    code, err = srv.wait_exit(timeout=60)
    took = time.monotonic() - asked
    print(f"\nstopped in {took:.1f} s")
    assert code == 0, err
    assert took < 15, f"stopping took {took:.1f} s"
    wait_for(lambda: not forked.is_running() or forked.status() == psutil.STATUS_ZOMBIE, timeout=5, what="the fork")
    with socket.socket() as again:  # the port is free
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", srv.port))
