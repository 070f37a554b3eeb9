"""Train, register, activate, roll back: real servers, real processes, the job store.

The fixture model ``versioned`` multiplies by a scale its training writes to weights.json; its
warm() reads the active version's copy (``self.artefacts``), so an answer says which version
served it, as do the ``X-Modelaas-Generation`` and ``X-Modelaas-Model-Version`` headers.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time

import httpx
import pytest

from support import wait_for

MODEL = "/v2/models/versioned"
ARGS = ("--model", "versioned:Versioned", "--model-name", "versioned", "--serving-poll", "0.2")


def train(client: httpx.Client, scale: float) -> str:
    job = client.post(f"{MODEL}/train/", json={"scale": scale}).json()["uuid"]
    wait_for(
        lambda: client.get(f"{MODEL}/train/{job}").json()["status"] == "done", timeout=60, what="the training to end"
    )
    return str(job)


def served(client: httpx.Client) -> tuple[float, str | None, str | None]:
    r = client.post(f"{MODEL}/predict/", params={"x": 1})
    assert r.status_code == 200, r.text
    headers = r.headers
    return r.json()["predictions"]["scale"], headers.get("x-modelaas-model-version"), headers["x-modelaas-generation"]


def serves(client: httpx.Client, scale: float) -> bool:
    """Whether every process answers with ``scale`` (several asks: each process takes some)."""
    return all(served(client)[0] == scale for _ in range(12))


def test_train_register_activate_and_roll_back(server, tmp_path):
    srv = server(*ARGS, "--workers", "2")
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        assert served(c) == (1.0, None, "0")  # no version: the model as installed
        first = train(c, 5)
        r = c.post(f"{MODEL}/versions/", json={"job": first[:8], "description": "scale 5"})  # an id prefix will do
        assert r.status_code == 201, r.text
        v1 = r.json()
        assert (v1["version"], v1["source"], v1["metrics"]) == (1, {"kind": "job", "job": first}, {"loss": 0.2})
        assert v1["files"] == [{"path": "weights.json", "size": 14}] and r.headers["location"].endswith("/versions/1")
        assert c.post(f"{MODEL}/versions/2/activate").status_code == 404
        r = c.post(f"{MODEL}/versions/1/activate")
        assert r.json() == {"model": "versioned", "active": 1, "generation": 1}
        wait_for(lambda: serves(c, 5.0), timeout=60, what="version 1 served")
        assert served(c) == (5.0, "1", "1")
        assert c.get(MODEL).json()["versions"] == ["1"]  # OIP metadata: the active version
        oip = c.post(
            f"{MODEL}/versions/1/infer", json={"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [2]}]}
        )
        assert oip.status_code == 200 and oip.headers["x-modelaas-model-version"] == "1"
        assert c.post(f"{MODEL}/versions/2/infer", json={"inputs": []}).status_code == 404

        assert c.post(f"{MODEL}/versions/", json={"job": train(c, 7)}).json()["version"] == 2
        c.post(f"{MODEL}/versions/2/activate")
        wait_for(lambda: serves(c, 7.0), timeout=60, what="version 2 served")
        c.post(f"{MODEL}/versions/1/activate")  # rolling back is activating an older one
        wait_for(lambda: serves(c, 5.0), timeout=60, what="version 1 served again")

        listing = c.get(f"{MODEL}/versions/").json()
        assert (listing["active"], listing["generation"]) == (1, 3)
        assert [(v["version"], v["active"]) for v in listing["versions"]] == [(2, False), (1, True)]
        assert c.delete(f"{MODEL}/versions/1").status_code == 409  # the active one stays
        assert c.delete(f"{MODEL}/versions/2").status_code == 204
        assert not (tmp_path / "data" / "versions" / "versioned" / "2").exists()
        assert c.post(f"{MODEL}/versions/", json={"job": first}).json()["version"] == 3  # 2 is never given again


def test_registering_refuses_what_is_not_a_finished_training(server):
    srv = server(*ARGS)
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        assert c.post(f"{MODEL}/versions/", json={"job": "f" * 32}).status_code == 404
        r = c.post(f"{MODEL}/versions/", json={})
        assert r.status_code == 400 and "job" in r.json()["message"]
        failed = c.post(f"{MODEL}/train/", json={"scale": 1000}).json()["uuid"]
        wait_for(lambda: c.get(f"{MODEL}/train/{failed}").json()["status"] == "error", timeout=60, what="a failure")
        r = c.post(f"{MODEL}/versions/", json={"job": failed})
        assert r.status_code == 409 and "only a training that finished" in r.json()["message"]
        assert c.get(f"{MODEL}/versions/").json()["versions"] == []
        assert list(srv.data_dir.glob("versions/versioned/*")) == []  # no staging folder left


WRK_SUMMARY = re.compile(r"(\d+) requests in")


@pytest.mark.timeout(180)
def test_an_activation_under_load_fails_no_request(server, tmp_path):
    """wrk on 64 keep-alive connections while both serving processes are replaced (each takes 0.5 s to warm)."""
    srv = server(*ARGS, "--workers", "2", env={"VERSIONED_WARM_SECONDS": "0.5"})
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        c.post(f"{MODEL}/versions/", json={"job": train(c, 3)})
        script = tmp_path / "post.lua"
        script.write_text('wrk.method = "POST"\n')
        load = subprocess.Popen(
            ["wrk", "-t2", "-c64", "-d60s", "-s", str(script), f"{srv.url}{MODEL}/predict/?x=1"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: served(c)[0] == 1.0, timeout=10, what="answers")
            time.sleep(1.5)  # under load
            c.post(f"{MODEL}/versions/1/activate")
            wait_for(lambda: "Reload finished" in srv.stderr_text(), timeout=90, what="the reload under load")
            time.sleep(1.0)  # and on, after it
        finally:
            load.send_signal(signal.SIGINT)  # wrk stops and prints its summary
        out, _ = load.communicate(timeout=60)
        total = int(WRK_SUMMARY.search(out).group(1))
        assert total > 1000, out
        assert "Non-2xx" not in out and "Socket errors" not in out, out  # zero failed requests
        # after it: every answer comes from the new version (fresh and reused connections alike)
        assert all(served(c) == (3.0, "1", "1") for _ in range(20))
        for _ in range(5):
            with httpx.Client(base_url=srv.url, timeout=30) as fresh:
                assert served(fresh) == (3.0, "1", "1")


def test_a_version_that_cannot_warm_leaves_the_old_processes_serving(server):
    srv = server(*ARGS, "--workers", "2", env={"VERSIONED_FAIL_SCALE": "9.0"})
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        c.post(f"{MODEL}/versions/", json={"job": train(c, 9)})
        c.post(f"{MODEL}/versions/", json={"job": train(c, 4)})
        c.post(f"{MODEL}/versions/1/activate")
        wait_for(lambda: "Reload abandoned" in srv.stderr_text(), timeout=60, what="the reload to be abandoned")
        assert all(served(c) == (1.0, None, "0") for _ in range(10))  # the old processes serve on
        assert srv.proc.poll() is None
        c.post(f"{MODEL}/versions/2/activate")  # the next change tries again
        wait_for(lambda: serves(c, 4.0), timeout=60, what="version 2 served")


def test_servers_on_one_postgresql_store_follow_an_activation(server, pg_database, tmp_path):
    a = server(*ARGS, "--jobs-db", pg_database, "--data-dir", str(tmp_path / "shared"))
    b = server(*ARGS, "--jobs-db", pg_database, "--data-dir", str(tmp_path / "shared"))
    with httpx.Client(base_url=a.url, timeout=30) as ca, httpx.Client(base_url=b.url, timeout=30) as cb:
        ca.post(f"{MODEL}/versions/", json={"job": train(ca, 6)})
        assert ca.post(f"{MODEL}/versions/1/activate").status_code == 200
        wait_for(lambda: serves(cb, 6.0), timeout=60, what="server B to follow the activation on A")
        assert served(cb)[1:] == ("1", "1")
        assert cb.post(f"{MODEL}/reload").json()["generation"] == 2
        wait_for(lambda: served(ca)[2] == "2", timeout=60, what="server A to follow the reload asked of B")
