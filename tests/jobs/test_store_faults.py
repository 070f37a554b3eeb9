"""The job store under contention and outages: reads never block writers, transient
write failures are retried, and what cannot be written is reported, never dropped."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from modelaas.jobs.records import Job, JobStatus, new_job_id
from modelaas.jobs.store import JobStore, store_url

BLOCKED = 10.0
"""How long a write may wait before it counts as blocked (SQLite waits 30 s for a lock)."""


@pytest.fixture
def sqlite_store(tmp_path) -> Iterator[JobStore]:
    s = JobStore(store_url(None, tmp_path))
    s.migrate()
    yield s
    s.close()


def make_job() -> Job:
    return Job(id=new_job_id(), model="m", owner="server-a")


def hold_reads_of(store: JobStore, thread_name: str) -> tuple[threading.Event, threading.Event]:
    """Make every SELECT run by ``thread_name`` stop, inside its transaction, until released."""
    reading, release = threading.Event(), threading.Event()

    def after_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.current_thread().name == thread_name and statement.lstrip().upper().startswith("SELECT"):
            reading.set()
            release.wait(60)

    sa.event.listen(store.engine, "after_cursor_execute", after_execute)
    return reading, release


@pytest.mark.parametrize(
    "read",
    [
        lambda s, job: s.events(job.id),
        lambda s, job: s.get(job.id),
        lambda s, job: s.list(),
        lambda s, job: s.count(),
    ],
    ids=["events", "get", "list", "count"],
)
def test_a_long_read_does_not_block_writers_on_sqlite(sqlite_store: JobStore, read: Any) -> None:
    """With WAL, a reader and a writer proceed at once; a read must not take the write lock."""
    store = sqlite_store
    job = store.create(make_job())
    store.add_logs(job.id, [f"line {i}" for i in range(100)])
    reading, release = hold_reads_of(store, "slow-reader")
    reader = threading.Thread(target=read, args=(store, job), name="slow-reader")
    reader.start()
    try:
        assert reading.wait(10), "the reader did not start"
        wrote: list[str] = []
        writer = threading.Thread(target=lambda: (store.add_logs(job.id, ["written"]), wrote.append("logs")))
        finisher = threading.Thread(target=lambda: (store.create(make_job()), wrote.append("create")))
        writer.start()
        finisher.start()
        writer.join(BLOCKED)
        finisher.join(BLOCKED)
        assert sorted(wrote) == ["create", "logs"], "a write waited for a read to end"
    finally:
        release.set()
        reader.join(60)
    assert [e.data["line"] for e in store.events(job.id, kinds=["log"])][-1] == "written"


def fail_first(store: JobStore, times: int, error: Exception, *, when: str = "INSERT") -> list[str]:
    """Make the first ``times`` statements starting with ``when`` fail with ``error``."""
    failed: list[str] = []

    def before_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(when) and len(failed) < times:
            failed.append(statement)
            raise error

    sa.event.listen(store.engine, "before_cursor_execute", before_execute)
    return failed


@pytest.mark.parametrize("when", ["INSERT", "UPDATE"])
def test_a_locked_database_is_retried_and_nothing_is_lost(sqlite_store: JobStore, when: str) -> None:
    store = sqlite_store
    job = store.create(make_job())
    store.claim_next("server-a", {})
    failed = fail_first(store, 2, sqlite3.OperationalError("database is locked"), when=when)
    store.add_logs(job.id, ["kept"])
    store.report(job.id, progress=0.5)
    assert store.finish(job.id, JobStatus.DONE, result={"ok": True}) is not None
    assert len(failed) == 2
    assert [e.data["line"] for e in store.events(job.id, kinds=["log"])] == ["kept"]
    final = store.get(job.id)
    assert final is not None and final.status is JobStatus.DONE and final.result == {"ok": True}


def test_a_failure_that_is_not_transient_is_raised_at_once(sqlite_store: JobStore) -> None:
    store = sqlite_store
    job = store.create(make_job())
    failed = fail_first(store, 5, sqlite3.OperationalError("disk I/O error"))
    with pytest.raises(sa.exc.OperationalError, match="disk I/O error"):
        store.add_logs(job.id, ["lost"])
    assert len(failed) == 1


class FakeBackend:
    """A backend whose trainings run until told to stop; nothing is started for real."""

    name = "fake"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.ended: dict[str, str] = {}

    def start(self, job: Job) -> dict[str, Any]:
        self.started.append(job.id)
        return {"backend": self.name}

    def poll(self, job_id: str) -> str | None:
        if job_id not in self.started:
            return "unknown process"  # as the process backend answers once it forgot a job
        return self.ended.get(job_id)

    def terminate(self, job_id: str) -> None:
        self.ended[job_id] = "signal SIGTERM"

    def kill(self, job_id: str) -> None:
        self.ended[job_id] = "signal SIGKILL"

    def forget(self, job_id: str) -> None:
        self.started.remove(job_id)

    def close(self) -> None:
        pass


def make_scheduler(store: JobStore, tmp_path: Any) -> tuple[Any, FakeBackend]:
    from modelaas.jobs.scheduler import Scheduler
    from modelaas.settings import Settings

    backend = FakeBackend()
    return Scheduler(Settings(data_dir=tmp_path / "data"), store, "server-a", backend), backend


def test_a_claim_whose_commit_was_lost_is_ended_not_left_running(sqlite_store: JobStore, tmp_path: Any) -> None:
    """The claim committed but its answer was lost (a dropped connection): the job is
    recorded as running on this server while no process runs it; it must not stay so."""
    scheduler, backend = make_scheduler(sqlite_store, tmp_path)
    lost = sqlite_store.create(make_job())
    sqlite_store.claim_next("server-a", {})  # as if the answer had never arrived
    scheduler.step()
    ended = sqlite_store.get(lost.id)
    assert ended is not None and ended.status is JobStatus.ERROR and "could not be started" in (ended.message or "")
    assert backend.started == []  # nothing was started for it


def test_an_ending_is_recorded_once_the_store_answers_again(sqlite_store: JobStore, tmp_path: Any) -> None:
    """A training that ended while the store was unreachable keeps its place until its end is recorded."""
    scheduler, backend = make_scheduler(sqlite_store, tmp_path)
    job = sqlite_store.create(make_job())
    scheduler.step()
    assert backend.started == [job.id]
    backend.ended[job.id] = "signal SIGKILL"
    failed = fail_first(sqlite_store, 1, sqlite3.OperationalError("disk I/O error"), when="SELECT")
    with pytest.raises(sa.exc.OperationalError):
        scheduler._reap()
    assert failed and scheduler.tracks(job.id)  # not forgotten
    scheduler._reap()
    ended = sqlite_store.get(job.id)
    assert ended is not None and ended.status is JobStatus.ERROR and "(signal SIGKILL)" in (ended.message or "")
    assert not scheduler.tracks(job.id) and backend.started == []
