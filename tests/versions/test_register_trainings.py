"""``--register-trainings``: each training that finishes becomes a version (never activated); off by default."""

from __future__ import annotations

import httpx

from support import wait_for

MODEL = "/v2/models/versioned"
ARGS = ("--model", "versioned:Versioned", "--model-name", "versioned")


def ended(client, scale: float) -> str:
    job = client.post(f"{MODEL}/train/", json={"scale": scale}).json()["uuid"]
    wait_for(
        lambda: client.get(f"{MODEL}/train/{job}").json()["status"] in ("done", "error"),
        timeout=60,
        what="the training to end",
    )
    return str(job)


def test_each_successful_training_becomes_a_version(server, tmp_path):
    srv = server(*ARGS, "--register-trainings")
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        job = ended(c, 5)
        wait_for(lambda: c.get(f"{MODEL}/versions/").json()["versions"], timeout=30, what="a version")
        failed = ended(c, 1000)  # its training raises: nothing to register
        assert c.get(f"{MODEL}/train/{failed}").json()["status"] == "error"
        second = ended(c, 7)
        wait_for(lambda: len(c.get(f"{MODEL}/versions/").json()["versions"]) == 2, timeout=30, what="two versions")
        listing = c.get(f"{MODEL}/versions/").json()
        assert (listing["active"], listing["generation"]) == (None, 0)  # registered, not activated
        first, newest = listing["versions"][1], listing["versions"][0]
        assert (first["version"], first["source"], first["args"]) == (1, {"kind": "job", "job": job}, {"scale": 5})
        assert first["created_by"] == "--register-trainings" and first["metrics"] == {"loss": 0.2}
        assert first["files"] == [{"path": "weights.json", "size": 14}]
        assert (newest["version"], newest["source"]["job"]) == (2, second)
        folder = tmp_path / "data" / "versions" / "versioned"
        assert (folder / "1" / "weights.json").read_text() == '{"scale": 5.0}'
        assert sorted(p.name for p in folder.iterdir()) == ["1", "2"]


def test_off_by_default(make_client):
    client = make_client("versioned:Versioned")
    scheduler = client.app.state.modelaas.trainings.host.scheduler
    job = ended(client, 5)
    assert client.get(f"{MODEL}/train/{job}").json()["status"] == "done"
    wait_for(lambda: not scheduler.tracks(job), timeout=30, what="the scheduler to record the end")
    assert client.get(f"{MODEL}/versions/").json()["versions"] == []


def test_on_in_an_app_of_its_own(make_client):
    client = make_client("versioned:Versioned", register_trainings=True)
    job = ended(client, 3)
    wait_for(lambda: client.get(f"{MODEL}/versions/").json()["versions"], timeout=30, what="a version")
    (version,) = client.get(f"{MODEL}/versions/").json()["versions"]
    assert (version["version"], version["source"]) == (1, {"kind": "job", "job": job})
