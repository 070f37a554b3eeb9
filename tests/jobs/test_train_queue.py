"""--train-queue holds under concurrent submissions (it was exceeded: 20 queued for 16)."""

from __future__ import annotations

import threading
from pathlib import Path

from modelaas.errors import TooManyJobs
from modelaas.jobs.records import JobStatus
from modelaas.jobs.service import JobService
from modelaas.jobs.store import JobStore, store_url
from modelaas.settings import Settings
from support import load_fixture


def test_concurrent_submissions_never_queue_more_than_the_limit(jobs_db: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", train_queue=4)
    adapter = load_fixture("trainer:Trainer")
    services = []
    for _ in range(8):  # as serving processes do: a store each
        store = JobStore(store_url(jobs_db, tmp_path))
        store.migrate()
        services.append(JobService(settings, store, "server-a"))
    start = threading.Barrier(len(services) * 3)
    outcomes: list[str] = []
    lock = threading.Lock()

    def submit(service: JobService) -> None:
        start.wait()
        try:
            service.submit(adapter, {"epochs": "1"})
            outcome = "queued"
        except TooManyJobs:
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=submit, args=(s,)) for s in services for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        queued = services[0].store.count(statuses=[JobStatus.QUEUED], owner="server-a")
        assert queued == outcomes.count("queued") == 4, outcomes
        assert outcomes.count("refused") == len(threads) - 4
    finally:
        for service in services:
            service.close()
