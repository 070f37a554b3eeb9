"""``modelaas versions ...`` and ``modelaas reload``, on a real server (--remote) and on its store (local)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import httpx

from support import MODELS, wait_for

MODEL = "/v2/models/versioned"
ARGS = ("--model", "versioned:Versioned", "--model-name", "versioned", "--serving-poll", "0.2")


def run(*args: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(MODELS), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "modelaas", *args], capture_output=True, text=True, timeout=120, env=env
    )


def trained(c: httpx.Client, scale: float) -> str:
    job = c.post(f"{MODEL}/train/", json={"scale": scale}).json()["uuid"]
    wait_for(lambda: c.get(f"{MODEL}/train/{job}").json()["status"] == "done", timeout=60, what="the training")
    return str(job)


def scale(c: httpx.Client) -> float:
    return float(c.post(f"{MODEL}/predict/", params={"x": 1}).json()["predictions"]["scale"])


def test_remote_register_activate_list_delete_reload(server, tmp_path):
    srv = server(*ARGS)
    remote = ("--remote", srv.url)
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        job = trained(c, 5)
        done = run("versions", "register", "versioned", "--job", job[:10], "--description", "five", *remote)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["version"] == 1 and "Registered version 1" in done.stderr
        archive = tmp_path / "v.zip"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("weights.json", '{"scale": 8}')
        archive.write_bytes(buf.getvalue())
        assert run("versions", "register", "versioned", "--archive", str(archive), *remote).returncode == 0
        done = run("versions", "activate", "versioned", "2", *remote)
        assert done.returncode == 0 and "Version 2 of 'versioned' is active" in done.stdout
        wait_for(lambda: scale(c) == 8.0, timeout=60, what="version 2 served")
        listed = run("versions", "list", "versioned", *remote).stdout.splitlines()
        assert listed[0].startswith("*    2") and listed[1].startswith("     1") and job in listed[1]
        assert json.loads(run("versions", "show", "versioned", "1", *remote).stdout)["description"] == "five"
        refused = run("versions", "delete", "versioned", "2", *remote)
        assert refused.returncode != 0 and "active one" in refused.stderr
        assert run("versions", "delete", "versioned", "1", *remote).returncode == 0
        unknown = run("versions", "activate", "versioned", "9", *remote)
        assert unknown.returncode != 0 and "no version 9" in unknown.stderr
        assert "generation 2" in run("reload", "versioned", *remote).stdout


def test_local_activation_is_followed_by_a_server_on_that_store(server):
    srv = server(*ARGS)
    local = ("--data-dir", str(srv.data_dir))
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        job = trained(c, 3)
        done = run("versions", "register", "versioned", "--job", job, *local)
        assert done.returncode == 0, done.stderr
        assert run("versions", "activate", "versioned", "1", *local).returncode == 0
        wait_for(lambda: scale(c) == 3.0, timeout=60, what="the server to follow a local activation")
    usage = run("versions", "register", "versioned", *local)
    assert usage.returncode == 2 and "--job or --archive" in usage.stderr
