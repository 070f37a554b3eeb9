"""``modelaas jobs`` on a local job store: where it is, ids, and what it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelaas.jobs.records import Job, JobStatus
from modelaas.jobs.store import JobStore, open_store
from modelaas.settings import Settings


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelaas", "jobs", *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        timeout=120,
        text=True,
    )


@pytest.fixture
def store_at(tmp_path: Path) -> Iterator[Callable[..., JobStore]]:
    """``store_at(data_dir=..., jobs_db=...)``: that job store, migrated (closed afterwards)."""
    opened: list[JobStore] = []

    def open_(**settings: object) -> JobStore:
        store = open_store(Settings(**settings))  # type: ignore[arg-type]
        store.migrate()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def add(store: JobStore, job_id: str, *, model: str = "trainer", status: JobStatus = JobStatus.DONE) -> Job:
    return store.create(Job(id=job_id, model=model, status=status, owner="elsewhere"))


# ------------------------------------------------------------------ item: where the store is
def test_data_dir_and_jobs_db_name_the_local_store_of_every_command(tmp_path, store_at):
    data_dir = tmp_path / "data"
    add(store_at(data_dir=data_dir), "a" * 32)
    other = {"MODELAAS_DATA_DIR": str(tmp_path / "elsewhere")}  # not the one asked for
    r = run("list", "--data-dir", str(data_dir), "--json", env=other)
    assert r.returncode == 0, r.stderr
    assert [x["uuid"] for x in json.loads(r.stdout)] == ["a" * 32]
    for command in ("show", "logs"):
        r = run(command, "a" * 32, "--data-dir", str(data_dir), env=other)
        assert r.returncode == 0, r.stderr
    db = tmp_path / "other.sqlite3"
    add(store_at(data_dir=tmp_path / "x", jobs_db=f"sqlite:///{db}"), "b" * 32)
    r = run("list", "--jobs-db", f"sqlite:///{db}", "--json", env=other)
    assert r.returncode == 0, r.stderr
    assert [x["uuid"] for x in json.loads(r.stdout)] == ["b" * 32]
    r = run("show", "b" * 32, "--jobs-db", f"sqlite:///{db}", env=other)
    assert r.returncode == 0 and json.loads(r.stdout)["uuid"] == "b" * 32


def test_a_local_store_option_with_remote_is_a_usage_error(tmp_path):
    r = run("list", "--remote", "http://127.0.0.1:9", "--data-dir", str(tmp_path))
    assert r.returncode == 2 and "--data-dir is for a local job store: not with --remote" in r.stderr
