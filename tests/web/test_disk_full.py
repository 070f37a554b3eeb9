"""A full disk answers 507 with a clear message, not a generic 500 (issue 11, low finding)."""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from typing import Any

import sqlalchemy as sa

from modelaas.jobs.records import Job, JobStatus, new_job_id


def test_a_full_disk_while_predicting_answers_507(make_client: Any) -> None:
    c = make_client("v2_basic")

    async def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device", "/srv/spool/x")

    c.app.state.modelaas.runtime.predict = full
    r = c.post("/v2/models/v2-basic/predict/", data={"count": "1"})
    assert r.status_code == 507, r.text
    body = r.json()
    assert "out of disk space" in body["message"] and body["request_id"] == r.headers["x-request-id"]
    assert "/srv" not in r.text


def test_a_full_job_store_answers_507_and_the_job_can_be_cancelled_once_there_is_room(make_client: Any) -> None:
    """Finding: a full disk gave generic 500s and a job stuck running that DELETE could not remove."""
    c = make_client("trainer:Trainer", train_cancel_grace=0.1)
    store = c.app.state.modelaas.jobs.store
    job = store.create(Job(id=new_job_id(), model="trainer", owner="elsewhere"))
    store.claim_next("elsewhere", {})  # running on another server
    store.retry_for = 0.3
    full = {"on": True}

    def before_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if full["on"] and statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            raise sqlite3.OperationalError("database or disk is full")

    sa.event.listen(store.engine, "before_cursor_execute", before_execute)
    r = c.delete(f"/v2/models/trainer/train/{job.id}")
    assert r.status_code == 507, r.text
    assert "out of disk space" in r.json()["message"]
    assert store.get(job.id).status is JobStatus.RUNNING
    full["on"] = False  # room again: the same request works
    r = c.delete(f"/v2/models/trainer/train/{job.id}")
    assert r.status_code == 200, r.text
    assert store.get(job.id).cancel_requested


def test_a_failing_store_is_logged_once_by_the_scheduler_not_every_second(settings: Any, caplog: Any) -> None:
    from modelaas.jobs.scheduler import Scheduler
    from modelaas.jobs.store import JobStore, store_url

    store = JobStore(store_url(None, settings.data_dir))
    store.migrate()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise sa.exc.OperationalError("UPDATE", {}, sqlite3.OperationalError("database or disk is full"))

    store.heartbeat_server = broken  # type: ignore[method-assign]
    scheduler = Scheduler(settings, store, "server-a", backend=None)  # type: ignore[arg-type]
    caplog.set_level(logging.ERROR, logger="modelaas.jobs")
    thread = threading.Thread(target=scheduler._loop, daemon=True)
    thread.start()
    time.sleep(3.5)  # three failed steps at least
    scheduler._stop.set()
    thread.join(5)
    store.close()
    failures = [r for r in caplog.records if "Scheduler step failed" in r.getMessage()]
    assert len(failures) == 1 and not failures[0].exc_info, [r.getMessage() for r in caplog.records]
    assert "database or disk is full" in failures[0].getMessage()
