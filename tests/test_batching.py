"""Adaptive batching: @batched typed models get many requests in one call."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelaas.errors import ClientGone, ConfigError, ModelLoadError, OutputInvalid
from modelaas.model.batch import Batch, BatchSpec, batched
from modelaas.model.interface import Model
from modelaas.runtime.batching import Batcher
from modelaas.runtime.core import Runtime
from modelaas.runtime.gate import PredictGate
from modelaas.settings import Settings
from support import load_fixture, metric_value, wait_for

URL = "/v2/models/batched-model/predict/"
MODELS = Path(__file__).parent / "fixtures" / "models"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _busy_then(c, model, bodies):
    """Post one slow request, then ``bodies`` while it runs; the answers, the slow one first."""
    with ThreadPoolExecutor(len(bodies) + 1) as pool:
        first = pool.submit(c.post, URL, json={"x": 100, "seconds": 0.5})
        wait_for(model.running.is_set, timeout=10, what="the first call to start")
        rest = [pool.submit(c.post, URL, json=b) for b in bodies]
        return [first.result(), *[f.result() for f in rest]]


# ------------------------------------------------------------------- over HTTP
def test_requests_that_arrive_during_a_call_go_together_in_the_next(make_client):
    c = make_client("batched_model:Doubler")
    model = c.app.state.modelaas.runtime.model("batched-model").target
    answers = _busy_then(c, model, [{"x": i} for i in range(5)])
    assert [a.status_code for a in answers] == [200] * 6
    assert [a.json()["predictions"]["double"] for a in answers] == [200, 0, 2, 4, 6, 8]  # each request its own answer
    assert model.calls[0] == [100]
    assert sorted(model.calls[1]) == [0, 1, 2, 3, 4] and len(model.calls) == 2




def test_batch_sizes_waits_and_model_time_are_in_the_metrics(make_client):
    c = make_client("batched_model:Doubler")
    model = c.app.state.modelaas.runtime.model("batched-model").target
    label = '{model="batched-model"}'
    names = [f"modelaas_batch_size_{k}{label}" for k in ("count", "sum")]
    names += [f"modelaas_queue_wait_seconds_count{label}", f"modelaas_model_duration_seconds_count{label}"]
    before = c.get("/metrics").text
    _busy_then(c, model, [{"x": i} for i in range(5)])
    after = c.get("/metrics").text
    calls, requests, waits, model_calls = (metric_value(after, n) - metric_value(before, n) for n in names)
    assert (calls, requests) == (2, 6)  # a call of 1, then a call of 5
    assert waits == 6 and model_calls == 2  # a wait per request, a model time per call


def test_each_request_of_a_batch_has_its_wait_and_the_batch_call_in_its_trace(make_client, spans):
    c = make_client("batched_model:Doubler")
    model = c.app.state.modelaas.runtime.model("batched-model").target
    parents = [f"00-{i:032x}-00f067aa0ba902b7-01" for i in range(1, 4)]
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(c.post, URL, json={"x": 100, "seconds": 0.5})
        wait_for(model.running.is_set, timeout=10, what="the first call to start")
        rest = [pool.submit(c.post, URL, json={"x": i}, headers={"traceparent": p}) for i, p in enumerate(parents)]
        assert first.result().status_code == 200 and all(f.result().status_code == 200 for f in rest)
    finished = spans.get_finished_spans()
    for parent in parents:
        trace = int(parent.split("-")[1], 16)
        mine = {s.name: s for s in finished if s.context.trace_id == trace}
        assert {"queue wait", "model call"} <= set(mine)
        assert mine["model call"].attributes["batch_size"] == 3
        assert mine["queue wait"].end_time <= mine["model call"].start_time


def test_a_batch_is_never_larger_than_max_size(make_client):
    c = make_client("batched_model:Doubler", batch="batched-model=3")
    model = c.app.state.modelaas.runtime.model("batched-model").target
    answers = _busy_then(c, model, [{"x": i} for i in range(7)])
    assert [a.status_code for a in answers] == [200] * 8
    assert max(len(call) for call in model.calls) == 3
    assert sorted(v for call in model.calls[1:] for v in call) == list(range(7))


def test_a_failing_call_fails_every_request_of_its_batch_with_the_models_error(make_client):
    c = make_client("batched_model:Doubler")
    model = c.app.state.modelaas.runtime.model("batched-model").target
    answers = _busy_then(c, model, [{"x": 1}, {"x": 2, "fail": True}, {"x": 3}])
    assert answers[0].status_code == 200
    for a in answers[1:]:
        assert a.status_code == 500
        assert a.json()["message"] == "Model 'batched-model' failed in predict: cannot double 2"


def test_with_retry_singly_only_the_bad_request_fails(make_client):
    c = make_client("batched_model:Retrying")
    model = c.app.state.modelaas.runtime.model("batched-model").target
    answers = _busy_then(c, model, [{"x": 1}, {"x": 2, "fail": True}, {"x": 3}])
    assert [a.status_code for a in answers] == [200, 200, 500, 200]
    assert answers[3].json()["predictions"]["double"] == 6 and "cannot double 2" in answers[2].json()["message"]
    assert sorted(model.calls[2:]) == [[1], [2], [3]]  # after the failed batch, one call each


def test_a_wrong_number_of_answers_is_a_500_naming_the_model_for_every_request(make_client):
    c = make_client("batched_model:Short")
    answers = [c.post(URL, json={"x": 1})]
    assert answers[0].status_code == 500
    assert answers[0].json()["message"] == (
        "Model 'batched-model' failed in predict: it returned 0 answers for a batch of 1 request."
    )


def test_a_full_queue_still_answers_503(make_client):
    c = make_client("batched_model:Doubler", predict_queue=2, batch="batched-model=1/0")
    assert not c.app.state.modelaas.runtime.batchers  # size 1: batching off, the gate's queue
    c = make_client("batched_model:Doubler", predict_queue=2)
    model = c.app.state.modelaas.runtime.model("batched-model").target
    answers = _busy_then(c, model, [{"x": i} for i in range(5)])
    codes = [a.status_code for a in answers]
    assert codes.count(503) == 3 and codes.count(200) == 3
    refused = 'modelaas_predictions_refused_total{model="batched-model",reason="overloaded"}'
    assert metric_value(c.get("/metrics").text, refused) >= 3
    assert "busy" in next(a for a in answers if a.status_code == 503).json()["message"]


def test_the_api_documents_one_requests_arguments(make_client):
    c = make_client("batched_model:Doubler")
    op = c.get("/openapi.json").json()["paths"][URL]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    props = schema.get("properties") or c.get("/openapi.json").json()["components"]["schemas"][
        schema["$ref"].rsplit("/", 1)[1]
    ]["properties"]
    assert props["x"]["type"] == "integer" and props["seconds"]["type"] == "number"


def test_validation_is_per_request(make_client):
    c = make_client("batched_model:Doubler")
    r = c.post(URL, json={"x": "seven"})
    assert r.status_code == 422 and "valid integer" in r.json()["x"][0]


# ------------------------------------------------------------ batcher, directly
def _batcher(spec: BatchSpec | None = None, **gate: object) -> tuple[Batcher, object]:
    adapter = load_fixture("batched_model:Doubler")
    return Batcher(adapter, PredictGate(**gate), spec or adapter.batch), adapter.target  # type: ignore[arg-type]


def _args(x: int, seconds: float = 0.0) -> dict:
    return {"x": x, "seconds": seconds, "fail": False}


@pytest.mark.anyio
async def test_a_request_whose_client_left_is_answered_and_not_called():
    batcher, model = _batcher()
    first = asyncio.ensure_future(batcher.submit(_args(1, 0.3)))
    while not model.running.is_set():
        await asyncio.sleep(0.01)

    async def gone() -> bool:
        return True

    async def here() -> bool:
        return False

    left = asyncio.ensure_future(batcher.submit(_args(2), gone=gone))
    stayed = asyncio.ensure_future(batcher.submit(_args(3), gone=here))
    assert (await first)["double"] == 2 and (await stayed)["double"] == 6
    with pytest.raises(ClientGone):
        await left
    assert model.calls == [[1], [3]]


@pytest.mark.anyio
async def test_a_request_cancelled_while_it_waits_is_dropped_before_the_call():
    batcher, model = _batcher()
    first = asyncio.ensure_future(batcher.submit(_args(1, 0.3)))
    while not model.running.is_set():
        await asyncio.sleep(0.01)
    cancelled = asyncio.ensure_future(batcher.submit(_args(2)))
    kept = asyncio.ensure_future(batcher.submit(_args(3)))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    await first
    assert (await kept)["double"] == 6
    assert model.calls == [[1], [3]]


@pytest.mark.anyio
async def test_a_timeout_fails_the_whole_batch_with_504():
    batcher, _ = _batcher(timeout=0.2)
    results = await asyncio.gather(*(batcher.submit(_args(i, 1.0)) for i in range(3)), return_exceptions=True)
    assert all(getattr(r, "status", None) == 504 for r in results)


@pytest.mark.anyio
async def test_an_async_batched_predict_is_awaited():
    class AsyncDoubler(Model):
        @batched(max_size=4)
        async def predict(self, x: Batch[int]) -> list[int]:
            await asyncio.sleep(0)
            return [2 * v for v in x]

    from modelaas.model.adapters import TypedAdapter

    adapter = TypedAdapter("async-doubler", AsyncDoubler())
    assert adapter.batch is not None and adapter.predict_is_async
    batcher = Batcher(adapter, PredictGate(), adapter.batch)
    assert await asyncio.gather(*(batcher.submit({"x": i}) for i in range(6))) == [0, 2, 4, 6, 8, 10]
    assert batcher.stats.items == 6 and max(batcher.stats.sizes) <= 4
    assert await adapter.predict({"x": 21}) == 42  # alone: a batch of one


def test_the_wait_adapts_to_arrivals_and_to_the_models_time():
    batcher, _ = _batcher(BatchSpec(max_size=8, max_wait=0.05))
    loop = asyncio.new_event_loop()
    try:
        fut = loop.create_future()
        from modelaas.runtime.batching import _Item

        item = _Item(_args(1), fut, None)
        batcher._pending.append(item)
        batcher._pending_weight += 1
        assert batcher._delay() == 0  # nothing measured yet: at once
        batcher._call_time = 0.1  # a call takes 100 ms: a request may wait 25 ms
        batcher._gap = 0.2  # but requests come every 200 ms: nobody else is coming in time
        assert batcher._delay() == 0
        batcher._gap = 0.001  # one every ms: wait for them, up to a quarter of the call time
        assert 0 < batcher._delay() <= 0.025
        batcher._call_time = 10.0  # a slow model: still no more than max_wait
        assert 0.025 < batcher._delay() <= 0.05
        batcher._pending.extend(_Item(_args(i), loop.create_future(), None) for i in range(7))
        batcher._pending_weight += 7
        assert batcher._delay() == 0  # full: at once
    finally:
        loop.close()


# ---------------------------------------------------------- declaring, settings
def test_a_batched_argument_must_be_annotated_batch():
    class Wrong(Model):
        @batched()
        def predict(self, x: int) -> list[int]:
            return [x]

    from modelaas.model.adapters import TypedAdapter

    with pytest.raises(ModelLoadError, match=r"argument 'x' of the @batched predict\(\) must be annotated Batch"):
        TypedAdapter("wrong", Wrong())


def test_batched_applies_to_predict_only():
    class Wrong(Model):
        @batched()
        def train(self, x: Batch[int]) -> None:
            pass

    from modelaas.model.adapters import TypedAdapter

    with pytest.raises(ModelLoadError, match="predict"):
        TypedAdapter("wrong", Wrong())


@pytest.mark.parametrize("bad", [{"max_size": 0}, {"max_size": 5000}, {"max_wait_ms": -1}])
def test_bounds_are_checked_where_declared(bad):
    with pytest.raises(ValueError):
        batched(**bad)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("batched-model", "is not NAME=MAX_SIZE"),
        ("batched-model=0", "is not NAME=MAX_SIZE"),
        ("batched-model=4/x", "is not NAME=MAX_SIZE"),
    ],
)
def test_the_batch_setting_is_checked(text, message):
    with pytest.raises(ConfigError, match=message):
        Settings(batch=text)


def test_the_batch_setting_names_served_batched_models(tmp_path):
    settings = Settings(data_dir=tmp_path, batch="nope=4")
    with pytest.raises(ConfigError, match="no model named 'nope'"):
        Runtime(settings, [load_fixture("batched_model:Doubler")])
    settings = Settings(data_dir=tmp_path, batch="batched-model=4")
    with pytest.raises(ConfigError, match="does not batch"):
        Runtime(settings, [load_fixture("batched_model:Plain")])
    settings = Settings(data_dir=tmp_path, batch="*=16/2")
    runtime = Runtime(settings, [load_fixture("batched_model:Doubler")])
    assert runtime.batchers["batched-model"].spec == BatchSpec(max_size=16, max_wait=0.002)


def test_the_cli_calls_a_batched_model_with_a_batch_of_one(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(MODELS), "MODELAAS_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "modelaas", "predict", "--model", "batched_model:Doubler", "--x", "21"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["predictions"]["double"] == 42


def test_a_wrong_answer_count_is_an_output_error_alone_too():
    adapter = load_fixture("batched_model:Short")
    with pytest.raises(OutputInvalid, match="returned 0 answers for a batch of 1 request"):
        adapter.predict({"x": 1})


# ------------------------------------------------------------ stacked tensors
ROWS_URL = "/v2/models/batched-model/predict/"


def _rows_busy_then(c, model, send):
    """One slow request, then ``send(pool)``'s requests while it runs; their answers."""
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(c.post, ROWS_URL, json={"x": [[0, 0]], "seconds": 0.5})
        wait_for(model.running.is_set, timeout=10, what="the first call to start")
        answers = [f.result() for f in send(pool)]
        assert first.result().status_code == 200
        return answers


def test_stacked_tensors_arrive_as_one_array_and_each_request_gets_its_rows(make_client):
    c = make_client("batched_model:RowSums")
    model = c.app.state.modelaas.runtime.model("batched-model").target
    bodies = [{"x": [[1, 2], [3, 4]]}, {"x": [[10, 20]]}]
    answers = _rows_busy_then(c, model, lambda pool: [pool.submit(c.post, ROWS_URL, json=b) for b in bodies])
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json()["predictions"] == [3.0, 7.0] and answers[1].json()["predictions"] == [30.0]
    assert model.calls == [1, 3]  # the second call: both requests' rows, stacked


def test_an_oip_request_with_a_batch_dimension_counts_as_that_many_items(make_client):
    c = make_client("batched_model:RowSums")  # max_size=4 rows
    model = c.app.state.modelaas.runtime.model("batched-model").target

    def infer(rows):
        tensor = {"name": "x", "datatype": "FP32", "shape": [rows, 2], "data": [1.0] * (2 * rows)}
        return c.post("/v2/models/batched-model/infer", json={"inputs": [tensor]})

    answers = _rows_busy_then(c, model, lambda pool: [pool.submit(infer, 3), pool.submit(infer, 3)])
    assert [a.status_code for a in answers] == [200, 200]
    for a in answers:
        (out,) = a.json()["outputs"]
        assert out["shape"] == [3] and out["data"] == [2.0, 2.0, 2.0]
    assert model.calls == [1, 3, 3]  # 3 + 3 rows are more than 4: two calls


def test_a_request_weighs_the_rows_of_its_stacked_tensors():
    np = pytest.importorskip("numpy")
    assert load_fixture("batched_model:RowSums").batch_weight({"x": np.zeros((3, 2)), "seconds": 0.0}) == 3
    assert load_fixture("batched_model:Doubler").batch_weight(_args(1)) == 1


def test_a_tensor_answer_with_rows_missing_is_a_500_naming_the_model(make_client):
    c = make_client("batched_model:RowsLost")
    r = c.post(ROWS_URL, json={"x": [[1, 2], [3, 4]]})
    assert r.status_code == 500
    assert r.json()["message"] == (
        "Model 'batched-model' failed in predict: it returned a tensor of 1 rows for a batch of 2 rows."
    )


def test_a_stacked_tensor_needs_a_batch_axis_first_and_no_default():
    with pytest.raises(ModelLoadError, match=r"must have a batch axis first: declare its shape as \(-1, \.\.\.\)"):
        load_fixture("batched_model:NoBatchAxis")
    with pytest.raises(ModelLoadError, match="must be required"):
        load_fixture("batched_model:OptionalRows")
