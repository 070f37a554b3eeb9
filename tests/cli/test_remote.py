"""The CLI against a real server (``--remote``), and ``modelaas jobs``."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(MODELS), "MODELAAS_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "modelaas", *args], env=env, capture_output=True, timeout=120)


def test_remote_predict_with_options_from_the_server(server, tmp_path):
    srv = server("--model", "v2_basic")
    r = run("predict", "--remote", srv.url, "--help", data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    models = r.stdout.decode().split("Models:", 1)[1]  # the server's, not those installed here
    assert "modelaas predict v2-basic --help" in models and "modelaas-demo" not in models
    r = run("predict", "v2-basic", "--remote", srv.url, "--help", data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "--count INT" in r.stdout.decode() and "[red|green]" in r.stdout.decode()
    r = run(
        "predict", "--remote", srv.url, "v2-basic", "--count", "4", "--values", "1", "--values", "2", data_dir=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["predictions"]["args"]["values"] == [1.0, 2.0]
    r = run("predict", "--remote", srv.url, "v2-basic", "--level", "50", data_dir=tmp_path)
    assert r.returncode == 2 and "Missing data for required field" in r.stderr.decode()


def test_remote_alias_options_take_the_keyword_spelling_too(server, tmp_path):
    srv = server("--model", "aliased:Aliased")
    for flag in ("--top-k", "--top_k"):
        r = run("predict", "--remote", srv.url, "aliased", flag, "4", data_dir=tmp_path)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["predictions"]["top_k"] == 4
    r = run("train", "--remote", srv.url, "aliased", "--num_epochs", "2", data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"num_epochs": 2}


def test_remote_predict_files_and_binary_answers(server, tmp_path):
    srv = server("--model", "v1_seed")
    f = tmp_path / "in.txt"
    f.write_bytes(b"abcd")
    r = run("predict", "--remote", srv.url, "v1-seed", "--data", str(f), data_dir=tmp_path)
    assert json.loads(r.stdout)["predictions"]["size"] == 8
    srv2 = server("--model", "v2_accept")
    out = tmp_path / "x.png"
    r = run(
        "predict", "--remote", srv2.url, "v2-accept", "--accept", "image/png", "--output", str(out), data_dir=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().startswith(b"\x89PNG")


def test_remote_train_follows_to_the_end_and_jobs_commands(server, tmp_path):
    srv = server("--model", "trainer:Trainer")
    r = run("train", "--remote", srv.url, "trainer", "--epochs", "3", "--seconds", "0.1", data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["epochs"] == 3
    err = r.stderr.decode()
    assert "submitted" in err and "epoch 3" in err and "[done]" in err
    records = json.loads(run("jobs", "list", "--remote", srv.url, "--json", data_dir=tmp_path).stdout)
    assert [x["status"] for x in records] == ["done"]
    job_id = records[0]["uuid"]
    shown = json.loads(run("jobs", "show", job_id, "--remote", srv.url, data_dir=tmp_path).stdout)
    assert shown["uuid"] == job_id
    shown = json.loads(run("jobs", "show", job_id[:6], "--remote", srv.url, data_dir=tmp_path).stdout)
    assert shown["uuid"] == job_id  # a unique start of the id will do
    logs = run("jobs", "logs", job_id[:6], "--remote", srv.url, data_dir=tmp_path).stdout.decode()
    assert "epoch 3" in logs
    r = run("jobs", "show", "zz", "--remote", srv.url, data_dir=tmp_path)
    assert r.returncode == 2 and f"There is no training job 'zz' on {srv.url}." in r.stderr.decode()


def test_remote_train_failure_exits_non_zero(server, tmp_path):
    srv = server("--model", "trainer:Trainer")
    r = run("train", "--remote", srv.url, "trainer", "--epochs", "1", "--fail", "true", data_dir=tmp_path)
    assert r.returncode == 1 and "training diverged" in r.stderr.decode()
    last = r.stderr.decode().strip().splitlines()[-1]
    assert re.fullmatch(r"Error: Training job [0-9a-f]{32} failed: .*training diverged", last), last


def test_cancel_remote_and_local_store(server, tmp_path):
    srv = server("--model", "trainer:Trainer")
    r = run(
        "train", "--remote", srv.url, "trainer", "--epochs", "1000", "--seconds", "0.1", "--detach", data_dir=tmp_path
    )
    job_id = json.loads(r.stdout)["uuid"]
    r = run("jobs", "cancel", job_id, "--remote", srv.url, data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "cancelled"
    # the local commands read the server's store (same data dir)
    data_dir = tmp_path / "data"
    local = json.loads(run("jobs", "list", "--json", data_dir=data_dir).stdout)
    assert [(x["uuid"], x["status"]) for x in local] == [(job_id, "cancelled")]
    second = json.loads(
        run(
            "train",
            "--remote",
            srv.url,
            "trainer",
            "--epochs",
            "1000",
            "--seconds",
            "0.1",
            "--detach",
            data_dir=tmp_path,
        ).stdout
    )["uuid"]
    r = run("jobs", "cancel", second, data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "cancelled"  # waited for: the server has stopped it
    assert json.loads(run("jobs", "show", second, data_dir=data_dir).stdout)["status"] == "cancelled"
    assert run("jobs", "show", "nope", data_dir=data_dir).returncode == 2
    # delete: locally, and on the server, by a unique start of the id
    assert (data_dir / "jobs" / second).exists()
    r = run("jobs", "delete", second[:8], data_dir=data_dir)
    assert r.returncode == 0 and f"Deleted job {second}." in r.stderr.decode()
    assert run("jobs", "show", second, data_dir=data_dir).returncode == 2
    assert not (data_dir / "jobs" / second).exists()
    r = run("jobs", "delete", job_id[:8], "--remote", srv.url, data_dir=tmp_path)
    assert r.returncode == 0 and f"Deleted job {job_id}." in r.stderr.decode()
    assert json.loads(run("jobs", "list", "--remote", srv.url, "--json", data_dir=tmp_path).stdout) == []


@pytest.mark.parametrize("answer", ["y", "n"])
def test_ctrl_c_at_a_terminal_asks_whether_to_cancel(server, tmp_path, answer):
    """At a terminal: progress is shown; Ctrl-C asks: 'y' cancels the job on the server, 'n'
    leaves it running and says how to follow it (its id, the server)."""
    import pty
    import select
    import signal

    srv = server("--model", "trainer:Trainer")
    primary, secondary = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(MODELS), "MODELAAS_DATA_DIR": str(tmp_path), "COLUMNS": "100"}
    args = ["train", "--remote", srv.url, "trainer", "--epochs", "1000", "--seconds", "0.1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelaas", *args],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        start_new_session=True,
    )
    os.close(secondary)
    seen = b""

    def read_until(needle: bytes, timeout: float = 30) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while needle not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(primary, 65536)
                except OSError:
                    break
        assert needle in seen, seen.decode(errors="replace")[-2000:]

    try:
        read_until(b"submitted")
        read_until(b"%")  # the progress bar
        proc.send_signal(signal.SIGINT)
        read_until(b"Cancel the training job?")
        os.write(primary, answer.encode() + b"\n")
        if answer == "y":
            read_until(b"cancelled")
        else:
            job_id = re.search(rb"Training job ([0-9a-f]{32}) submitted", seen).group(1).decode()
            read_until(f"modelaas jobs logs -f {job_id} --remote {srv.url}".encode())
            job = json.loads(run("jobs", "cancel", job_id, "--remote", srv.url, data_dir=tmp_path).stdout)
            assert job["status"] == "cancelled"
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)  # reaped here, not left to the next test
        os.close(primary)
