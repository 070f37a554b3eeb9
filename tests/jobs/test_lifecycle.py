"""A training's life through the HTTP API, with real training processes."""

import time

import pytest

URL = "/v2/models/trainer/train/"


def wait_for(client, url, statuses, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = client.get(url).json()
        if record["status"] in statuses:
            return record
        time.sleep(0.05)
    raise AssertionError(f"still {record['status']} after {timeout} s: {record}")


@pytest.fixture
def client(make_client):
    return make_client("trainer:Trainer")


def test_submit_run_and_finish(client):
    r = client.post(URL, data={"epochs": "3"})
    assert r.status_code == 200
    record = r.json()
    assert record["status"] in ("queued", "running") and record["args"]["epochs"] == 3
    assert set(record) >= {"uuid", "date", "args", "status"}
    done = wait_for(client, URL + record["uuid"], {"done", "error"})
    assert done["status"] == "done", done
    assert done["result"]["output"]["epochs"] == 3
    assert done["progress"] == 1.0 and done["metrics"] == {"loss": 1 / 3}
    assert set(done["result"]) == {"output", "finish_date", "duration"}
    assert [j["uuid"] for j in client.get(URL).json()] == [record["uuid"]]
    log = client.get(URL + record["uuid"] + "/logs").text
    for needle in ("starting", "epoch 3", "to stderr", "from a subprocess"):
        assert needle in log
    files = client.get(URL + record["uuid"] + "/files").json()
    assert [f["path"] for f in files] == ["sub/log.csv", "weights.txt"]
    assert client.get(files[1]["href"]).text == "w=1\n"


def test_errors_and_crashes_are_recorded(client):
    failing = client.post(URL, data={"fail": "true", "epochs": "1"}).json()
    crashing = client.post(URL, data={"crash": "true"}).json()
    f = wait_for(client, URL + failing["uuid"], {"done", "error"})
    assert (f["status"], f["message"]) == ("error", "training diverged")
    assert "ValueError: training diverged" in client.get(URL + failing["uuid"] + "/logs").text
    c = wait_for(client, URL + crashing["uuid"], {"done", "error"})
    assert c["status"] == "error" and "SIGSEGV" in c["message"]


def test_cancel_running_and_queued(client):
    running = client.post(URL, data={"epochs": "1000", "seconds": "0.05", "ignore_cancel": "true"}).json()
    queued = client.post(URL, data={"epochs": "1"}).json()
    wait_for(client, URL + running["uuid"], {"running"})
    assert client.get(URL + queued["uuid"]).json()["status"] == "queued"
    r = client.delete(URL + queued["uuid"])
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = client.delete(URL + running["uuid"])
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert len(client.get(URL).json()) == 2  # cancelled records stay listed
    r = client.delete(URL + queued["uuid"])  # a finished job is removed
    assert r.status_code == 200 and client.get(URL + queued["uuid"]).status_code == 404


def test_unknown_job_and_bad_arguments(client):
    assert client.get(URL + "nope").status_code == 404
    assert client.delete(URL + "nope").status_code == 404
    r = client.post(URL, data={"epochs": "0"})
    assert r.status_code == 422 and "epochs" in r.json()


def test_v2_model_training_is_captured(make_client):
    c = make_client("trainer", model_name="v2-trainer")
    record = c.post("/v2/models/v2-trainer/train/", data={"epoch_num": "3"}).json()
    assert record["args"] == {"epoch_num": 3, "seconds": 0.0}
    done = wait_for(c, "/v2/models/v2-trainer/train/" + record["uuid"], {"done", "error"})
    assert done["result"]["output"] == {"trained": 3}
    log = c.get("/v2/models/v2-trainer/train/" + record["uuid"] + "/logs").text
    assert log.count("epoch done") == 3 and "v2 training with" in log
