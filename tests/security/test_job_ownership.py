"""Jobs belong to the token that submitted them: other train tokens cannot see, read,
cancel or delete them (404, as for a job that does not exist); admin tokens can."""

from __future__ import annotations

from typing import Any

import pytest

from support import wait_for

ALICE = "alice-train-token-0123456789"
BOB = "bob-train-token-0123456789ab"
ADMIN = "admin-token-0123456789abcdef"
TOKENS = f"train {ALICE}; train {BOB}; admin {ADMIN}"
URL = "/v2/models/trainer/train/"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_done(client: Any, job_id: str, token: str) -> None:
    def ended() -> bool:
        return client.get(URL + job_id, headers=bearer(token)).json()["status"] in ("done", "error")

    wait_for(ended, timeout=60, what=f"job {job_id} to end", every=0.1)


@pytest.fixture
def jobs(make_client: Any) -> tuple[Any, str, str]:
    client = make_client("trainer:Trainer", tokens=TOKENS)
    alices = client.post(URL, data={"epochs": "1"}, headers=bearer(ALICE)).json()["uuid"]
    bobs = client.post(URL, data={"epochs": "1"}, headers=bearer(BOB)).json()["uuid"]
    wait_done(client, alices, ALICE)
    wait_done(client, bobs, BOB)
    return client, alices, bobs


def test_a_train_token_sees_only_its_own_jobs(jobs: tuple[Any, str, str]) -> None:
    """Finding: jobs had no owner, so any train token read, cancelled and deleted every job."""
    client, alices, bobs = jobs
    assert [r["uuid"] for r in client.get(URL, headers=bearer(ALICE)).json()] == [alices]
    assert client.get(URL, headers=bearer(ALICE)).headers["X-Total-Count"] == "1"
    assert [r["uuid"] for r in client.get(URL, headers=bearer(BOB)).json()] == [bobs]
    for suffix in ("", "/logs", "/events", "/files", "/files/weights.txt"):
        r = client.get(URL + alices + suffix, headers=bearer(BOB))
        assert r.status_code == 404, (suffix, r.text)
        unknown = client.get(URL + "0" * 32 + suffix, headers=bearer(BOB)).json()["message"]
        assert r.json()["message"] == unknown.replace("0" * 32, alices)
        assert client.get(URL + alices + suffix, headers=bearer(ALICE)).status_code == 200, suffix
    assert client.delete(URL + alices, headers=bearer(BOB)).status_code == 404
    assert client.get(URL + alices, headers=bearer(ALICE)).status_code == 200  # still there


def test_an_admin_token_sees_and_removes_every_job(jobs: tuple[Any, str, str]) -> None:
    client, alices, bobs = jobs
    assert sorted(r["uuid"] for r in client.get(URL, headers=bearer(ADMIN)).json()) == sorted([alices, bobs])
    assert client.get(URL + bobs + "/logs", headers=bearer(ADMIN)).status_code == 200
    assert client.delete(URL + alices, headers=bearer(ADMIN)).status_code == 200
    assert client.get(URL + alices, headers=bearer(ALICE)).status_code == 404


def test_without_tokens_every_client_sees_every_job(make_client: Any) -> None:
    client = make_client("trainer:Trainer")
    job = client.post(URL, data={"epochs": "1"}).json()["uuid"]
    assert [r["uuid"] for r in client.get(URL).json()] == [job]
    assert client.get(URL + job).status_code == 200
