"""Prediction execution: per-process concurrency limit, bounded queue, timeout, disconnects."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelaas.errors import ClientGone, Overloaded, PredictTimeout
from modelaas.gate import PredictGate

URL = "/v2/models/slow-model/predict/"


def test_one_prediction_at_a_time_by_default(make_client):
    c = make_client("slow_model:Slow")
    model = c.app.state.modelaas.runtime.model("slow-model").target
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: c.post(URL, data={"seconds": "0.1"}), range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert model.peak == 1 and model.calls == 4


def test_concurrency_setting_allows_parallel_calls(make_client):
    c = make_client("slow_model:Slow", predict_concurrency=3)
    model = c.app.state.modelaas.runtime.model("slow-model").target
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: c.post(URL, data={"seconds": "0.3"}), range(3)))
    assert model.peak == 3


def test_full_queue_answers_503_with_retry_after(make_client):
    c = make_client("slow_model:Slow", predict_queue=1)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: c.post(URL, data={"seconds": "0.5"}), range(4)))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) == 2 and codes.count(503) == 2
    refused = next(a for a in answers if a.status_code == 503)
    assert refused.headers["retry-after"] == "1" and "busy" in refused.json()["message"]


def test_timeout_answers_504_and_keeps_the_slot_until_the_code_returns(make_client):
    c = make_client("slow_model:Slow", predict_timeout=0.2)
    start = time.monotonic()
    r = c.post(URL, data={"seconds": "1.0"})
    assert r.status_code == 504 and "0.2 s" in r.json()["message"]
    assert time.monotonic() - start < 0.9
    gate = c.app.state.modelaas.runtime.gate
    assert gate.stuck == 1
    r = c.post(URL, data={"seconds": "0"})  # waits for the stuck call, then runs
    assert r.status_code == 200 and gate.stuck == 0


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_gate_does_not_run_for_a_client_that_left_while_waiting():
    gate = PredictGate()
    ran = []
    release = threading.Event()

    async def gone():
        return True

    busy = asyncio.ensure_future(gate.run(release.wait, 5))
    await asyncio.sleep(0.01)
    waiting = asyncio.ensure_future(gate.run(ran.append, 1, gone=gone))
    await asyncio.sleep(0.01)
    release.set()
    await busy
    with pytest.raises(ClientGone):
        await waiting
    assert ran == [] and gate.running == 0
    # a request that did not have to wait is run at once: its client cannot have left before its turn
    await gate.run(ran.append, 2, gone=gone)
    assert ran == [2]
    gate.close()


@pytest.mark.anyio
async def test_gate_overload_and_timeout_units():
    gate = PredictGate(concurrency=1, queue=0, timeout=0.05)
    release = threading.Event()
    first = asyncio.ensure_future(gate.run(release.wait, 2))
    await asyncio.sleep(0.01)
    with pytest.raises(Overloaded):
        await gate.run(lambda: None)
    with pytest.raises(PredictTimeout):
        await first
    release.set()
    for _ in range(100):
        if gate.running == 0:
            break
        await asyncio.sleep(0.01)
    assert gate.running == 0 and gate.stuck == 0
    gate.close()


@pytest.mark.anyio
async def test_async_timeout():
    gate = PredictGate(timeout=0.05)

    async def forever():
        await asyncio.sleep(10)

    with pytest.raises(PredictTimeout):
        await gate.run(forever, is_async=True)
    assert gate.running == 0
    gate.close()
