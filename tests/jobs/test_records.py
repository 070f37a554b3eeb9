"""The job record as clients see it: DEEPaaS's keys and meanings, then ours."""

import datetime as dt

from modelaas.jobs.records import TERMINAL, Job, JobStatus, to_record

T0 = dt.datetime(2026, 11, 27, 15, 14, 42, 902045, tzinfo=dt.timezone.utc)


def test_states_and_terminality():
    assert {s.value for s in JobStatus} == {"queued", "running", "done", "error", "cancelled", "interrupted"}
    assert {s for s in JobStatus if s.is_terminal} == set(TERMINAL)
    assert JobStatus.QUEUED.is_active and JobStatus.RUNNING.is_active and not JobStatus.DONE.is_active


def test_done_record_has_the_deepaas_shape_and_run_time_duration():
    job = Job(
        id="5ba8fc51",
        model="m",
        status=JobStatus.DONE,
        args={"sleep": 3},
        created_at=T0,
        started_at=T0 + dt.timedelta(seconds=10),  # queued for 10 s
        finished_at=T0 + dt.timedelta(seconds=13, microseconds=1368),
        result=None,
        progress=1.0,
    )
    record = to_record(job)
    assert {k: record[k] for k in ("uuid", "date", "args", "status", "result")} == {
        "uuid": "5ba8fc51",
        "date": "2026-11-27 15:14:42.902045",
        "args": {"sleep": 3},
        "status": "done",
        "result": {"output": None, "finish_date": "2026-11-27 15:14:55.903413", "duration": "0:00:03.001368"},
    }
    assert record["created_at"] == "2026-11-27T15:14:42.902045Z" and record["progress"] == 1.0
    assert "message" not in record


def test_running_and_error_records():
    running = to_record(Job(id="a", model="m", status=JobStatus.RUNNING, created_at=T0, started_at=T0))
    assert running["status"] == "running" and "result" not in running and running["finished_at"] is None
    error = to_record(
        Job(id="b", model="m", status=JobStatus.ERROR, created_at=T0, started_at=T0, finished_at=T0, message="boom")
    )
    assert error["message"] == "boom" and error["result"]["output"] is None
