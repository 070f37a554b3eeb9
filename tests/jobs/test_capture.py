"""A training's output capture and context when the job store fails under them.

The capture redirects file descriptors 1 and 2, so each check runs it in a process of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelaas.jobs.context import JobContext
from modelaas.jobs.records import Job, JobStatus, new_job_id
from modelaas.jobs.store import JobStore, store_url

CAPTURE = textwrap.dedent(
    """
    import json, logging, sqlite3, sys
    import sqlalchemy as sa
    from modelaas.jobs.logs import OutputCapture
    from modelaas.jobs.records import Job
    from modelaas.jobs.store import JobStore

    url, lines, failures, buffer_bytes, max_bytes = sys.argv[1], *map(int, sys.argv[2:6])

    class Failing(JobStore):
        failures = 0

        def add_logs(self, job_id, batch, **kw):
            if self.failures > 0:
                self.failures -= 1
                # what a database driver does on a lost connection: log (more than a pipe holds), raise
                logging.getLogger("sqlalchemy.pool").error("connection lost " + "x" * 200_000)
                raise sa.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
            return super().add_logs(job_id, batch, **kw)

    store = Failing(url)
    store.migrate()
    store.create(Job(id="job", model="m", owner="s"))
    store.failures = failures
    capture = OutputCapture(store, "job", buffer_bytes=buffer_bytes, max_bytes=max_bytes or None)
    capture.start()
    for i in range(lines):
        print(f"line {i} " + "y" * 40)
    capture.stop()
    job = store.get("job")
    stored = store.log_lines("job", 0, 10**9)
    print(json.dumps({"log_lines": job.log_lines, "dropped": job.log_dropped, "lines": stored}))
    """
)


def run_capture(
    tmp_path: Path, *, lines: int, failures: int = 0, buffer_bytes: int = 16 * 1024 * 1024, max_bytes: int = 0
) -> tuple[dict, str]:
    url = store_url(None, tmp_path)
    args = [sys.executable, "-c", CAPTURE, url, *map(str, (lines, failures, buffer_bytes, max_bytes))]
    done = subprocess.run(args, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_a_store_that_fails_and_logs_while_lines_pour_in_loses_nothing_and_logs_outside(tmp_path: Path) -> None:
    """The capture once logged the driver's warning into its own full pipe and hung for good
    (or swallowed the failure and lost the batch)."""
    result, stderr = run_capture(tmp_path, lines=50_000, failures=5)
    numbers = [int(line.split()[1]) for line in result["lines"] if line.startswith("line ")]
    assert numbers == list(range(50_000))
    assert result["dropped"] == 0 and result["log_lines"] == len(result["lines"])
    assert not any("connection lost" in line for line in result["lines"])  # the driver's log is not the job's
    assert stderr.count("connection lost") == 5  # it is the server's
    assert "log lines cannot be stored (database is locked)" in stderr and "the job store is back" in stderr


def test_lines_beyond_the_buffer_are_counted_and_marked_and_the_end_is_kept(tmp_path: Path) -> None:
    result, _ = run_capture(tmp_path, lines=50_000, failures=5, buffer_bytes=256 * 1024)
    lines = result["lines"]
    numbers = [int(line.split()[1]) for line in lines if line.startswith("line ")]
    markers = [line for line in lines if line.startswith("[modelaas]")]
    assert result["dropped"] > 0 and markers
    assert sum(int(m.split()[1]) for m in markers) == result["dropped"]
    assert len(numbers) + result["dropped"] == 50_000
    assert numbers == sorted(numbers) and numbers[-1] == 49_999


@pytest.mark.parametrize("failures", [0, 5])
def test_a_log_stops_at_its_limit_with_a_line_saying_so_and_counts_the_rest(tmp_path: Path, failures: int) -> None:
    """Finding: logs had no size cap."""
    limit = 100_000
    result, _ = run_capture(tmp_path, lines=20_000, failures=failures, max_bytes=limit)
    lines = result["lines"]
    numbers = [int(line.split()[1]) for line in lines if line.startswith("line ")]
    assert lines[-1].startswith("[modelaas] The log reached its limit of 100,000 bytes (--train-log-size)")
    assert sum(len(line.encode()) + 1 for line in lines[:-1]) <= limit
    assert numbers == list(range(len(numbers))) and 0 < len(numbers) < 20_000
    assert result["dropped"] == 20_000 - len(numbers)


class Unreachable(JobStore):
    """A store whose every call fails as PostgreSQL does when it is down."""

    def _run(self, work, *, read, repeatable):  # type: ignore[no-untyped-def]
        raise sa.exc.OperationalError("SELECT 1", {}, OSError("connection refused"))


def test_an_unreachable_store_never_reaches_the_models_code(tmp_path: Path) -> None:
    store = JobStore(store_url(None, tmp_path))
    store.migrate()
    job = store.create(Job(id=new_job_id(), model="m", owner="s"))
    store.claim_next("s", {})
    context = JobContext(Unreachable(store.url), job.id, tmp_path / "out")
    context.report(progress=0.5, loss=1.0)  # no exception
    assert context.cancelled is False
    context._store = store  # the store is back: the latest values are written
    context.report(progress=0.75)
    context.flush()
    back = store.get(job.id)
    assert back is not None and back.progress == 0.75 and back.metrics == {"loss": 1.0}
    assert back.status is JobStatus.RUNNING


@pytest.mark.parametrize("status", [JobStatus.DONE, JobStatus.ERROR])
def test_a_trainings_end_waits_for_the_store_to_come_back(tmp_path: Path, monkeypatch, status) -> None:
    import modelaas.jobs.store as store_module

    store = JobStore(store_url(None, tmp_path))
    store.migrate()
    job = store.create(Job(id=new_job_id(), model="m", owner="s"))
    store.claim_next("s", {})
    calls: list[int] = []
    real = JobStore.finish

    def finish(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) <= 3:  # down for three attempts
            raise sa.exc.OperationalError("UPDATE", {}, OSError("connection refused"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(JobStore, "finish", finish)
    monkeypatch.setattr(store_module, "RETRY_LONG_DELAY", 0.01)
    monkeypatch.setattr(store_module.time, "sleep", lambda s: None)
    ended = store.finish_eventually(job.id, status, result={"ok": 1}, message="m")
    assert len(calls) == 4 and ended is not None and ended.status is status
