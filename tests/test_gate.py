"""Prediction execution: per-process concurrency limit, bounded queue, timeout, disconnects."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelaas.errors import ClientGone, Overloaded, PredictTimeout
from modelaas.runtime.gate import PredictGate

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
    with pytest.raises(Overloaded, match=r"^The server is busy: 1 prediction running and 0 waiting\."):
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


# ------------------------------------------------------------------ where calls run
@pytest.mark.anyio
async def test_sync_calls_run_on_one_model_thread_and_warm_too():
    gate = PredictGate()
    threads = set()

    def call(_):
        threads.add(threading.get_ident())
        return threading.get_ident()

    warm_thread = await gate.call_on_model_thread(call, 0)
    await asyncio.gather(*(gate.run(call, i) for i in range(50)))
    assert threads == {warm_thread} and warm_thread != threading.get_ident()
    assert gate.running == 0 and gate.waiting == 0
    gate.close()


@pytest.mark.anyio
async def test_inline_always_runs_on_the_event_loop_thread():
    gate = PredictGate(inline="always")
    here = threading.get_ident()
    assert await gate.call_on_model_thread(threading.get_ident) == here
    assert set(await asyncio.gather(*(gate.run(lambda _: threading.get_ident(), i) for i in range(5)))) == {here}
    gate.close()


@pytest.mark.anyio
async def test_inline_auto_moves_fast_calls_to_the_loop_and_back_for_good_when_one_is_slow(monkeypatch):
    from modelaas.runtime import gate as gate_module

    gate = PredictGate(inline="auto")
    here = threading.get_ident()
    first = [await gate.run(threading.get_ident) for _ in range(gate_module.AUTO_CALLS)]
    assert here not in first and len(set(first)) == 1 and gate.on_loop
    assert await gate.run(threading.get_ident) == here
    await gate.run(time.sleep, gate_module.AUTO_SLOW * 2)  # a slow call: back to the model thread, for good
    assert not gate.on_loop and await gate.run(threading.get_ident) == first[0]
    gate.close()


@pytest.mark.anyio
async def test_inline_auto_keeps_a_slow_model_on_its_thread():
    from modelaas.runtime import gate as gate_module

    gate = PredictGate(inline="auto")
    await gate.run(time.sleep, gate_module.AUTO_SLOW * 2)
    for _ in range(gate_module.AUTO_CALLS):
        await gate.run(lambda: None)
    assert not gate.on_loop
    gate.close()


def test_unknown_inline_mode_is_refused():
    with pytest.raises(ValueError, match="inline"):
        PredictGate(inline="sometimes")


# ------------------------------------------------------------------ the limit, whatever runs
@pytest.mark.anyio
async def test_async_and_sync_calls_share_the_limit():
    gate = PredictGate(concurrency=1)
    running, peak = [0], [0]

    def enter():
        running[0] += 1
        peak[0] = max(peak[0], running[0])

    def sync_call():
        enter()
        time.sleep(0.02)
        running[0] -= 1

    async def async_call():
        enter()
        await asyncio.sleep(0.02)
        running[0] -= 1

    await asyncio.gather(
        *(gate.run(sync_call) for _ in range(3)), *(gate.run(async_call, is_async=True) for _ in range(3))
    )
    assert peak[0] == 1 and gate.running == 0 and gate.waiting == 0
    gate.close()


@pytest.mark.anyio
async def test_a_waiting_call_that_is_cancelled_gives_its_place_back():
    gate = PredictGate()
    release = threading.Event()
    busy = asyncio.ensure_future(gate.run(release.wait, 5))
    await asyncio.sleep(0.01)
    waiting = asyncio.ensure_future(gate.run(lambda: "never"))
    await asyncio.sleep(0.01)
    assert gate.waiting == 1
    waiting.cancel()
    await asyncio.sleep(0.01)
    assert gate.waiting == 0
    release.set()
    await busy
    assert await gate.run(lambda: "next") == "next" and gate.running == 0
    gate.close()


@pytest.mark.anyio
async def test_timeout_counts_from_when_the_call_starts_not_while_it_waits():
    gate = PredictGate(timeout=0.2)
    first = asyncio.ensure_future(gate.run(time.sleep, 0.15))
    await asyncio.sleep(0.01)
    assert await gate.run(time.sleep, 0.1) is None  # waited ~0.14 s, ran 0.1 s: within its own 0.2 s
    await first
    gate.close()


@pytest.mark.anyio
async def test_model_errors_come_back_as_raised():
    gate = PredictGate()

    def fails():
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await gate.run(fails)
    assert gate.running == 0
    gate.close()


@pytest.mark.anyio
async def test_many_fast_calls_under_load_all_answer_in_order_of_arrival():
    gate = PredictGate(queue=64)
    order = []
    for i in range(20):  # measured fast: later calls may be handed over ahead of their turn
        await gate.run(order.append, i)
    order.clear()
    results = await asyncio.gather(*(gate.run(lambda i: order.append(i) or i, i) for i in range(60)))
    assert results == list(range(60)) and order == list(range(60))
    assert gate.running == 0 and gate.waiting == 0
    gate.close()


class _Where:
    """A typed model that tells which thread ran warm() and predict()."""

    @staticmethod
    def adapter():
        from modelaas import Model
        from modelaas.model.adapters import TypedAdapter

        class Where(Model):
            warm_thread = None

            def warm(self) -> None:
                self.warm_thread = threading.get_ident()

            def predict(self) -> dict:
                return {"same_as_warm": threading.get_ident() == self.warm_thread}

        return TypedAdapter("where", Where())


@pytest.mark.parametrize("inline", ["never", "always"])
def test_served_model_predicts_on_the_thread_that_warmed_it(make_client, inline):
    c = make_client(_Where.adapter(), predict_inline=inline)
    answers = {c.post("/v2/models/where/predict/").json()["predictions"]["same_as_warm"] for _ in range(5)}
    assert answers == {True}
    assert c.app.state.modelaas.runtime.gate.on_loop is (inline == "always")


def test_predict_inline_setting_is_checked():
    from modelaas.errors import ConfigError
    from modelaas.settings import Settings

    with pytest.raises(ConfigError, match="predict_inline must be 'never', 'always' or 'auto'"):
        Settings.load({"predict_inline": "sometimes"})
    assert Settings.load({}, environ={"MODELAAS_PREDICT_INLINE": "auto"}).predict_inline == "auto"
