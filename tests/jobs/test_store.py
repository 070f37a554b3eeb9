"""The job store against SQLite and PostgreSQL: states, races, events, orphans."""

import datetime as dt
import sys
import threading

import pytest

from modelaas.errors import ConfigError
from modelaas.jobs.records import InputFile, Job, JobStatus, new_job_id, to_record
from modelaas.jobs.store import JobStore, store_url


@pytest.fixture
def store(jobs_db, tmp_path):
    s = JobStore(store_url(jobs_db, tmp_path))
    s.migrate()
    yield s
    s.close()


def make_job(model="m", owner="server-a", **kw):
    return Job(id=new_job_id(), model=model, owner=owner, **kw)


def test_migrate_is_idempotent_and_versioned(store):
    from modelaas.jobs.schema import LATEST

    assert LATEST == 3
    assert store.migrate() == LATEST
    assert store.migrate() == LATEST


def test_round_trip_keeps_every_field(store):
    job = make_job(
        args={"epochs": 3, "data": {"name": "data", "content_type": "text/csv", "original_filename": "d.csv"}},
        raw={"epochs": "3", "data": {"$file": 0}},
        inputs=(InputFile("data", "/spool/x", "text/csv", "d.csv"),),
        metrics={"loss": 0.5},
    )
    store.create(job)
    back = store.get(job.id)
    assert back == job.but(created_at=back.created_at)
    assert abs(back.created_at - job.created_at) < dt.timedelta(milliseconds=1)
    assert back.created_at.tzinfo is not None


def test_claim_runs_oldest_first_and_only_own_jobs(store):
    first, second = make_job(), make_job()
    other = make_job(owner="server-b")
    for j in (first, other, second):
        store.create(j)
    claimed = store.claim_next("server-a", {"backend": "process"})
    assert claimed.id == first.id and claimed.status is JobStatus.RUNNING and claimed.started_at is not None
    assert store.claim_next("server-a", {}).id == second.id
    assert store.claim_next("server-a", {}) is None
    assert store.get(other.id).status is JobStatus.QUEUED


def test_concurrent_claims_never_run_a_job_twice(store, jobs_db, tmp_path):
    for _ in range(20):
        store.create(make_job())
    claimed: list[str] = []
    lock = threading.Lock()

    def worker():
        own = JobStore(store_url(jobs_db, tmp_path))
        while (job := own.claim_next("server-a", {})) is not None:
            with lock:
                claimed.append(job.id)
        own.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 20 and len(set(claimed)) == 20


def test_final_state_is_set_once(store):
    job = store.create(make_job())
    store.claim_next("server-a", {})
    done = store.finish(job.id, JobStatus.DONE, result={"acc": 0.9})
    assert done.status is JobStatus.DONE and done.result == {"acc": 0.9} and done.progress == 1.0
    assert store.finish(job.id, JobStatus.ERROR, message="late") is None
    assert store.get(job.id).status is JobStatus.DONE


def test_cancel_queued_at_once_running_by_request(store):
    queued = store.create(make_job())
    running = store.create(make_job())
    store.claim_next("server-a", {})  # the first one
    a = store.request_cancel(queued.id)
    assert a.status is JobStatus.RUNNING and a.cancel_requested  # it was claimed first
    b = store.request_cancel(running.id)
    assert b.status is JobStatus.CANCELLED and b.finished_at is not None
    assert store.request_cancel("nope") is None


def test_progress_metrics_and_events(store):
    job = store.create(make_job())
    store.claim_next("server-a", {})
    store.report(job.id, progress=0.5, metrics={"loss": 1.0})
    store.report(job.id, metrics={"acc": 0.5})
    store.add_logs(job.id, ["line 1", "line 2"])
    store.finish(job.id, JobStatus.DONE, result=1)
    back = store.get(job.id)
    assert back.metrics == {"loss": 1.0, "acc": 0.5}
    events = store.events(job.id)
    kinds = [e.kind for e in events]
    assert kinds == ["state", "state", "progress", "progress", "log", "log", "state"]
    assert [e.data.get("status") for e in events if e.kind == "state"] == ["queued", "running", "done"]
    assert [e.id for e in events] == sorted(e.id for e in events)
    after = store.events(job.id, after=events[3].id)
    assert [e.kind for e in after] == ["log", "log", "state"]
    assert [e.data["line"] for e in store.events(job.id, kinds=["log"])] == ["line 1", "line 2"]


def test_delete_removes_job_and_events(store):
    job = store.create(make_job())
    assert store.delete(job.id) and store.get(job.id) is None and store.events(job.id) == []
    assert not store.delete(job.id)


def test_list_and_count(store):
    a, b = store.create(make_job(model="a")), store.create(make_job(model="b"))
    assert [j.id for j in store.list()] == [a.id, b.id]
    assert [j.id for j in store.list("b")] == [b.id]
    assert store.count(statuses=[JobStatus.QUEUED], owner="server-a") == 2


def test_jobs_of_dead_servers_are_interrupted(store):
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    store.register_server("server-a")
    store.register_server("server-b", pid=gone.pid)
    mine = store.create(make_job(owner="server-a"))
    theirs = store.create(make_job(owner="server-b"))
    unknown = store.create(make_job(owner="server-c"))
    store.claim_next("server-b", {})
    # server-b ran on this host and its process is gone; server-c never registered
    interrupted = store.interrupt_orphans(stale_after=60, pid_alive=lambda pid: pid != gone.pid)
    assert {j.id for j in interrupted} == {theirs.id, unknown.id}
    assert store.get(mine.id).status is JobStatus.QUEUED
    record = to_record(store.get(theirs.id))
    assert record["status"] == "interrupted" and "stopped" in record["message"]


def test_bad_urls_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="postgresql://"):
        store_url("mysql://x", tmp_path)


def test_an_unreachable_postgresql_store_is_a_config_error():
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    with pytest.raises(ConfigError, match="Cannot open job store"):
        JobStore("postgresql+psycopg://nobody@127.0.0.1:1/none").migrate()


def test_without_psycopg_a_postgresql_store_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as when only the dev extra is installed
    with pytest.raises(ConfigError, match=r"modelaas\[postgres\]"):
        JobStore("postgresql+psycopg://nobody@127.0.0.1:1/none").migrate()


def test_event_writers_of_one_job_commit_in_id_order(store):
    """A writer holding a job's events back makes the next writer wait (ids follow commit order)."""
    import time

    import sqlalchemy as sa

    from modelaas.jobs import schema

    job = store.create(make_job())
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises every writer already")
    done = threading.Event()
    with store.engine.connect() as conn:
        trans = conn.begin()
        conn.execute(sa.select(schema.jobs.c.id).where(schema.jobs.c.id == job.id).with_for_update())
        first = conn.execute(
            schema.events.insert()
            .returning(schema.events.c.id)
            .values(job_id=job.id, kind="log", data={"line": "first"}, at=dt.datetime.now(dt.timezone.utc))
        ).scalar()
        writer = threading.Thread(target=lambda: (store.add_logs(job.id, ["second"]), done.set()))
        writer.start()
        time.sleep(0.3)
        assert not done.is_set()  # waits for the first writer's commit
        trans.commit()
    writer.join(10)
    lines = [(e.id, e.data["line"]) for e in store.events(job.id, kinds=["log"])]
    assert [line for _, line in lines] == ["first", "second"] and lines[0][0] == first


def _migrate_at(url: str, start: float) -> str:
    import time

    time.sleep(max(0.0, start - time.time()))
    try:
        JobStore(url).migrate()
        return "ok"
    except ConfigError as exc:
        return exc.message


def test_processes_migrating_a_new_sqlite_file_at_once_all_succeed(tmp_path):
    """A supervisor and its serving processes may all migrate a new job store at start-up."""
    import multiprocessing
    import time

    url = store_url(None, tmp_path)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(6) as pool:
        start = time.time() + 3  # after every process has imported SQLAlchemy
        results = pool.starmap(_migrate_at, [(url, start)] * 6)
    assert results == ["ok"] * 6
    from modelaas.jobs.schema import LATEST

    assert JobStore(url).migrate() == LATEST  # found at the latest version: migrated once, completely


def test_log_lines_are_numbered_read_by_number_and_a_batch_sent_twice_is_stored_once(store):
    from modelaas.jobs.store import JobGone

    job = store.create(make_job())
    assert store.add_logs(job.id, ["a", "b"], first=0) == 2
    assert store.add_logs(job.id, ["a", "b"], first=0) == 2  # its commit was lost on the way: sent again
    assert store.add_logs(job.id, ["marker", "c"], first=2, dropped=7) == 4
    assert store.add_logs(job.id, ["d"]) == 5  # at the end
    for first, lines in ((7, ["x"]), (4, ["x", "y"])):  # a gap, an overlap
        with pytest.raises(ValueError, match=f"at line 5, not {first}"):
            store.add_logs(job.id, lines, first=first)
    assert store.log_lines(job.id) == ["a", "b", "marker", "c", "d"]
    assert store.log_lines(job.id, 3, 1) == ["c"]
    assert store.log_lines(job.id, 5) == []
    back = store.get(job.id)
    assert (back.log_lines, back.log_dropped) == (5, 7)
    assert to_record(back)["log_lines"] == 5 and to_record(back)["log_lines_dropped"] == 7
    assert [e.data["line"] for e in store.events(job.id, kinds=["log"])] == ["a", "b", "marker", "c", "d"]
    store.delete(job.id)
    with pytest.raises(JobGone):
        store.add_logs(job.id, ["late"], first=5)


def test_a_version_1_store_is_migrated_with_its_log_lines_numbered(jobs_db, tmp_path):
    import sqlalchemy as sa

    from modelaas.jobs import schema

    url = store_url(jobs_db, tmp_path)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a store as modelaas with schema version 1 left it
        schema.version_table.create(conn)
        conn.execute(schema.version_table.insert().values(version=1))
        schema.MIGRATIONS[0](conn)
        now = dt.datetime.now(dt.timezone.utc)
        v1 = sa.MetaData()
        jobs = sa.Table("modelaas_jobs", v1, autoload_with=conn)
        events = sa.Table("modelaas_job_events", v1, autoload_with=conn)
        assert "log_lines" not in jobs.c and "line" not in events.c
        for job_id in ("j1", "j2"):
            conn.execute(
                jobs.insert().values(
                    id=job_id, model="m", status="done", args={}, raw={}, inputs=[], created_at=now, metrics={},
                    owner="s", runner={}, cancel_requested=False,
                )
            )  # fmt: skip
        history = [("j1", "state", "queued"), ("j1", "log", "a"), ("j2", "log", "x"), ("j1", "progress", None)]
        history += [("j1", "log", "b"), ("j2", "log", "y"), ("j1", "log", "c")]
        for job_id, kind, line in history:
            data = {"line": line} if line else {}
            conn.execute(events.insert().values(job_id=job_id, kind=kind, data=data, at=now))
    engine.dispose()
    store = JobStore(url)
    try:
        assert store.migrate() == 1
        assert store.log_lines("j1") == ["a", "b", "c"] and store.log_lines("j2", 1) == ["y"]
        assert store.get("j1").log_lines == 3 and store.get("j2").log_lines == 2
        assert store.add_logs("j1", ["d"], first=3) == 4
    finally:
        store.close()
