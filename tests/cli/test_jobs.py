"""``modelaas jobs`` on a local job store: where it is, ids, and what it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import support
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


# ------------------------------------------------------------------ item: job ids
def in_a_terminal(args: list[str], env: dict[str, str], columns: int = 80) -> str:
    """What ``modelaas jobs ...`` shows on a terminal ``columns`` wide."""
    terminal = {**os.environ, **env, "COLUMNS": str(columns), "TERM": "xterm"}
    return support.modelaas_in_a_terminal(["jobs", *args], terminal)


def test_list_shows_whole_ids_at_an_80_column_terminal_and_when_piped(tmp_path, store_at):
    data_dir = tmp_path / "data"
    store = store_at(data_dir=data_dir)
    ids = ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"]
    for job_id in ids:
        add(store, job_id, model="a-model-with-a-rather-long-name", status=JobStatus.RUNNING)
    store.finish(ids[0], JobStatus.ERROR, message="The training process ended unexpectedly (signal SIGKILL). " * 2)
    piped = run("list", "--data-dir", str(data_dir))
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert lines[0].split()[0] == "id" and [line.split()[0] for line in lines[1:]] == ids
    assert "SIGKILL" in lines[1] and "…" not in piped.stdout
    shown = in_a_terminal(["list", "--data-dir", str(data_dir)], {})
    for job_id in ids:
        assert job_id in shown, shown


def test_a_unique_start_of_an_id_names_the_job_and_an_ambiguous_one_lists_them(tmp_path, store_at):
    data_dir = tmp_path / "data"
    store = store_at(data_dir=data_dir)
    add(store, "abc10000000000000000000000000000")
    add(store, "abc20000000000000000000000000000")
    add(store, "def00000000000000000000000000000", model="other")
    where = ["--data-dir", str(data_dir)]
    r = run("show", "abc1", *where)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["uuid"] == "abc10000000000000000000000000000"
    assert run("logs", "def", *where).returncode == 0
    r = run("show", "abc", *where)
    assert r.returncode == 2
    assert "'abc' is the start of 2 job ids" in r.stderr
    assert "abc10000000000000000000000000000, abc20000000000000000000000000000" in r.stderr
    r = run("show", "abc", "--model", "other", *where)
    assert r.returncode == 2
    store_file = (data_dir / "jobs.sqlite3").absolute()
    assert f"Error: Model 'other' has no training job 'abc' in the job store {store_file}." in r.stderr
    r = run("show", "0000", *where)
    assert r.returncode == 2
    assert f"Error: There is no training job '0000' in the job store {store_file}." in r.stderr
    assert "any model" not in r.stderr


def test_match_is_exact_first_then_a_unique_start():
    from modelaas.cli.job_sources import match
    from modelaas.errors import ClientError, JobNotFound

    assert match("ab", ["ab", "abc"], model=None, where="") == "ab"
    assert match("abc", ["ab", "abcd"], model=None, where="") == "abcd"
    with pytest.raises(JobNotFound):
        match("", ["ab"], model=None, where="")
    with pytest.raises(ClientError, match=r"'a' is the start of 12 job ids on x: a00, a01, .*a09, \.\.\."):
        match("a", [f"a{i:02}" for i in range(12)], model=None, where="on x")
    with pytest.raises(ClientError, match=r"'a' is the start of more than 11 job ids"):
        match("a", [f"a{i:02}" for i in range(12)], model=None, where="on x", read_at_most=11)


# ------------------------------------------------------------------ item: a data dir that cannot be
@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--listen-port", "9", "--data-dir", "{blocked}/data"],
        ["jobs", "list", "--data-dir", "{blocked}/data"],
        ["jobs", "show", "abc", "--jobs-db", "sqlite:///{blocked}/data/jobs.db"],
        ["train", "--model", "trainer:Trainer"],  # its runs go into MODELAAS_DATA_DIR
        ["train", "--model", "trainer:Trainer", "--output-dir", "{blocked}/run"],
    ],
)
def test_a_data_dir_that_cannot_be_created_is_one_error_line(tmp_path, args):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    argv = [a.replace("{blocked}", str(blocked)) for a in args]
    r = subprocess.run(
        [sys.executable, "-m", "modelaas", *argv],
        env={**os.environ, "MODELAAS_DATA_DIR": str(blocked / "data")},
        capture_output=True,
        timeout=120,
        text=True,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: Cannot create "), r.stderr
    assert str(blocked) in lines[0] and "Not a directory" in lines[0]


# ------------------------------------------------------------------ item: --jobs-db as a path
def test_jobs_db_takes_a_plain_file_path_absolute_or_relative(tmp_path, store_at):
    absolute = tmp_path / "abs" / "x.db"
    add(store_at(data_dir=tmp_path / "d", jobs_db=str(absolute)), "c" * 32)
    assert absolute.is_file()  # the path given, not a folder named after a URL
    r = run("list", "--jobs-db", str(absolute), "--json")
    assert r.returncode == 0, r.stderr
    assert [x["uuid"] for x in json.loads(r.stdout)] == ["c" * 32]
    cwd = tmp_path / "here"
    cwd.mkdir()
    r = run("list", "--jobs-db", "./rel.db", cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert (cwd / "rel.db").is_file()
    assert f"No training jobs in the job store {cwd / 'rel.db'}." in r.stderr  # which file it is


def test_a_three_slash_sqlite_url_that_looks_absolute_is_warned_about(tmp_path):
    meant = tmp_path / "meant" / "x.db"
    meant.parent.mkdir()
    url = "sqlite:///" + str(meant).lstrip("/")  # what a user writes for /tmp/.../x.db
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    r = run("list", "--jobs-db", url, cwd=cwd)
    assert r.returncode == 0, r.stderr
    actual = cwd / str(meant).lstrip("/")
    assert f"Warning: --jobs-db {url} is the file {actual}" in r.stderr
    assert f"write the path {meant} or sqlite:///{meant}" in r.stderr
    assert not meant.exists() and actual.is_file()  # SQLAlchemy's meaning is kept
    r = run("list", "--jobs-db", f"sqlite:///{meant}", cwd=cwd)  # four slashes: absolute, no warning
    assert r.returncode == 0 and "Warning" not in r.stderr and meant.is_file()


@pytest.mark.slow
def test_serve_says_which_job_store_file_it_uses(tmp_path, server):
    db = tmp_path / "store" / "jobs.db"
    srv = server("--model", "v2_basic", "--jobs-db", str(db))
    srv.proc.terminate()
    code, err = srv.wait_exit()
    assert code == 0, err
    assert f"Job store: {db}" in err and db.is_file()
