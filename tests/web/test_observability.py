"""What an operator sees of an app: access log records, warnings, /metrics, traces, job lifecycle lines."""

from __future__ import annotations

import concurrent.futures
import io
import json
import logging
import re
from typing import Any

import pytest

import support
from modelaas.errors import ConfigError
from modelaas.settings import Settings
from modelaas.telemetry import context
from modelaas.telemetry.logs import ContextFilter, ContextStream, JsonFormatter, TextFormatter
from modelaas.tokens import hash_token

URL = "/v2/models/v2-basic/predict/"
METRICS_TOKEN = "metrics-token-0123456789abcdef"
PREDICT_TOKEN = "predict-token-0123456789abcdef"




# ---------------------------------------------------------------------------- logs
def test_an_access_record_per_request_with_query_names_only(make_client, caplog):
    c = make_client("v2_basic")
    caplog.set_level(logging.INFO, logger="modelaas.access")
    r = c.post(URL + "?token=hunter2&debug", data={"count": "2"}, headers={"X-Request-ID": "acc-1"})
    assert r.status_code == 200
    (record,) = [rec for rec in caplog.records if rec.name == "modelaas.access"]
    assert record.request_id == "acc-1" and record.status == 200 and record.method == "POST"
    assert record.path == URL and record.query == ["token", "debug"] and record.model == "v2-basic"
    assert record.bytes == len(r.content) and record.duration_ms > 0
    assert "hunter2" not in record.getMessage() and "?token&debug" in record.getMessage()


def test_no_access_log_when_switched_off(make_client, caplog):
    c = make_client("v2_basic", access_log=False)
    caplog.set_level(logging.INFO, logger="modelaas.access")
    assert c.post(URL, data={"count": "2"}).status_code == 200
    assert [rec for rec in caplog.records if rec.name == "modelaas.access"] == []


def test_refusals_are_warnings_with_the_request_id(make_client, caplog):
    c = make_client("v2_basic", client_max_size=10)
    caplog.set_level(logging.WARNING, logger="modelaas.web")
    r = c.post(URL, data={"count": "2" * 50}, headers={"X-Request-ID": "big-1"})
    assert r.status_code == 413
    (record,) = [rec for rec in caplog.records if rec.levelno == logging.WARNING and "413" in rec.getMessage()]
    assert record.request_id == "big-1"


def test_overload_and_timeout_are_warnings_and_counted(make_client, caplog):
    c = make_client("slow_model:Slow", predict_queue=0, predict_timeout=0.5)
    caplog.set_level(logging.WARNING, logger="modelaas.web")
    url = "/v2/models/slow-model/predict/"
    before = c.get("/metrics").text
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(c.post, url, data={"seconds": "1.5"})
        support.wait_for(
            lambda: c.app.state.modelaas.runtime.gate.running or None, timeout=10, what="the slow call to run"
        )
        refused = c.post(url, data={"seconds": "0"})
        assert refused.status_code == 503
        assert slow.result().status_code == 504
    statuses = sorted(int(m) for m in re.findall(r"answered (\d+)", caplog.text))
    assert statuses == [503, 504], caplog.text
    after = c.get("/metrics").text
    for reason in ("overloaded", "timeout"):
        series = f'modelaas_predictions_refused_total{{model="slow-model",reason="{reason}"}}'
        assert support.metric_value(after, series) - support.metric_value(before, series) == 1


def test_json_lines_have_stable_keys_and_the_context_ids():
    record = logging.LogRecord("modelaas.jobs", logging.INFO, __file__, 1, "Training %s started.", ("j1",), None)
    token = context.job_id.set("j1")
    try:
        ContextFilter().filter(record)
    finally:
        context.job_id.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "Training j1 started." and line["job_id"] == "j1" and line["logger"] == "modelaas.jobs"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"]) and line["level"] == "INFO"
    assert "request_id" not in line  # absent keys are left out, never null
    assert ": [job j1] Training j1 started." in TextFormatter().format(record)


def test_model_output_during_a_request_becomes_records_with_its_id(caplog):
    out = io.StringIO()
    stream = ContextStream(out)
    caplog.set_level(logging.INFO, logger="modelaas.model.output")
    stream.write("outside\n")
    token = context.request_id.set("r-9")
    try:
        stream.write("line one\nline ")
        stream.write("two\n")
    finally:
        context.request_id.reset(token)
    assert out.getvalue() == "outside\n"
    assert [r.getMessage() for r in caplog.records] == ["line one", "line two"]


@pytest.mark.parametrize(("given", "kept"), [("WARN", "warn"), ("Info", "info"), ("debug", "debug")])
def test_log_levels_are_choices(given, kept, tmp_path):
    assert Settings(data_dir=tmp_path, log_level=given).log_level == kept


def test_an_unknown_log_level_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="log_level must be"):
        Settings(data_dir=tmp_path, log_level="loud")


# ------------------------------------------------------------------------- metrics
def test_metrics_count_requests_by_route_model_and_status(make_client):
    c = make_client("v2_basic")
    series = 'modelaas_requests_total{method="POST",model="v2-basic",route="/v2/models/{model}/predict/",status="200"}'
    model_count = 'modelaas_model_duration_seconds_count{model="v2-basic"}'
    before = c.get("/metrics").text
    for _ in range(3):
        assert c.post(URL, data={"count": "1"}).status_code == 200
    assert c.post("/v2/models/made-up/predict/", data={}).status_code == 404
    text = c.get("/metrics").text
    assert support.metric_value(text, series) - support.metric_value(before, series) == 3
    assert support.metric_value(text, model_count) - support.metric_value(before, model_count) == 3
    assert 'model="made-up"' not in text  # a client cannot make up label values
    assert "modelaas_queue_wait_seconds_bucket" in text and "modelaas_predictions_running" in text


def test_metrics_need_the_metrics_scope_when_tokens_are_on(make_client):
    tokens = f"metrics {hash_token(METRICS_TOKEN)}; predict {hash_token(PREDICT_TOKEN)}"
    c = make_client("v2_basic", tokens=tokens)
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", headers={"Authorization": f"Bearer {PREDICT_TOKEN}"}).status_code == 403
    r = c.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 200 and "modelaas_requests_total" in r.text


def test_no_metrics_route_when_switched_off(make_client):
    c = make_client("v2_basic", metrics=False)
    assert c.get("/metrics").status_code == 404


# -------------------------------------------------------------------------- traces
def test_a_request_continues_the_callers_trace_with_spans_for_each_stage(make_client, spans, caplog):
    c = make_client("v2_basic")
    caplog.set_level(logging.INFO, logger="modelaas.access")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = f"00-{trace_id}-00f067aa0ba902b7-01"
    r = c.post(URL, data={"count": "1"}, headers={"traceparent": parent, "X-Request-ID": "tr-1"})
    assert r.status_code == 200
    finished = {s.name: s for s in spans.get_finished_spans()}
    template = "/v2/models/{model}/predict/"  # spans are named by route: few names, whatever the paths
    assert {"POST " + template, "validate arguments", "queue wait", "model call", "render"} <= set(finished)
    root = finished["POST " + template]
    assert root.attributes["url.path"] == URL and root.attributes["http.route"] == template
    assert format(root.context.trace_id, "032x") == trace_id
    assert format(root.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert root.attributes["modelaas.request_id"] == "tr-1" and root.attributes["http.response.status_code"] == 200
    for name in ("validate arguments", "queue wait", "model call", "render"):
        assert finished[name].parent.span_id == root.context.span_id
        assert finished[name].context.trace_id == root.context.trace_id
    (record,) = [rec for rec in caplog.records if rec.name == "modelaas.access"]
    assert record.request_id == "tr-1" and record.trace_id == trace_id  # each id in the other's record


# ---------------------------------------------------------------------- trainings
TRAIN = "/v2/models/trainer/train/"


def _wait_reaped(client: Any, job: str) -> None:
    scheduler = client.app.state.modelaas.trainings.host.scheduler
    support.wait_for(lambda: not scheduler.tracks(job) or None, timeout=30, what=f"job {job} to be reaped")


def test_a_trainings_life_is_logged_and_counted(make_client, caplog):
    c = make_client("trainer:Trainer")
    caplog.set_level(logging.INFO, logger="modelaas.jobs")
    before = c.get("/metrics").text
    done = c.post(TRAIN, data={"epochs": "1"}, headers={"X-Request-ID": "sub-1"}).json()["uuid"]
    failed = c.post(TRAIN, data={"epochs": "1", "fail": "true"}).json()["uuid"]
    for job in (done, failed):
        support.wait_status(c, f"{TRAIN}{job}", {"done", "error"})
        _wait_reaped(c, job)
    lines = {(rec.job_id, rec.getMessage().split(" of 'trainer' ")[1].split(" ")[0]) for rec in caplog.records}
    assert {(done, "submitted."), (done, "started"), (done, "finished"), (failed, "failed")} <= lines, lines
    (submitted,) = [r for r in caplog.records if r.job_id == done and "submitted" in r.getMessage()]
    assert submitted.request_id == "sub-1"
    (failure,) = [r for r in caplog.records if r.job_id == failed and "failed" in r.getMessage()]
    assert failure.levelno == logging.WARNING and "training diverged" in failure.getMessage()
    assert failure.job_status == "error" and failure.duration_ms >= 0
    text = c.get("/metrics").text
    for status in ("done", "error"):
        series = f'modelaas_trainings_finished_total{{model="trainer",status="{status}"}}'
        assert support.metric_value(text, series) - support.metric_value(before, series) == 1
    submitted_series = 'modelaas_trainings_submitted_total{model="trainer"}'
    assert support.metric_value(text, submitted_series) - support.metric_value(before, submitted_series) == 2


def test_a_training_is_a_trace_of_its_own_linked_to_the_request(make_client, spans, monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")  # the training process prints its spans into its log
    monkeypatch.setenv("OTEL_SERVICE_NAME", "trainings")
    c = make_client("trainer:Trainer")
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    headers = {"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"}
    job = c.post(TRAIN, data={"epochs": "1"}, headers=headers).json()["uuid"]
    support.wait_status(c, f"{TRAIN}{job}", {"done"})
    _wait_reaped(c, job)
    log = c.get(f"{TRAIN}{job}/logs").text
    exported = json.loads(log[log.index("{") : log.rindex("}") + 1])
    assert exported["name"] == "train trainer" and exported["attributes"]["modelaas.job_id"] == job
    assert exported["context"]["trace_id"] != f"0x{trace_id}"  # a trace of its own ...
    (link,) = exported["links"]
    assert link["context"]["trace_id"] == f"0x{trace_id}"  # ... linked to the request's
    (request_span,) = [s for s in spans.get_finished_spans() if s.name == "POST /v2/models/{model}/train/"]
    assert link["context"]["span_id"] == f"0x{request_span.context.span_id:016x}"


def test_tallied_observations_equal_observed_ones():
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from modelaas.telemetry.metrics import _Tally, add_to_histogram
    from modelaas.telemetry.series import FAST

    values = [0.0, 0.0004, 0.0005, 0.0006, 0.003, 0.2, 0.2, 7.0, 61.0, 1e9]
    texts = []
    for tallied in (False, True):
        registry = CollectorRegistry()
        child = Histogram("h", "h", ["m"], buckets=FAST, registry=registry).labels("x")
        if tallied:
            tally = _Tally()
            for v in values:
                tally.add(v)
            buckets, count, total = tally.take()
            assert count == len(values) and tally.count == 0
            add_to_histogram(child, buckets, total)
        else:
            for v in values:
                child.observe(v)
        texts.append(generate_latest(registry))
    assert texts[0] == texts[1]


def test_trainings_do_not_write_into_the_servers_metric_files(monkeypatch, tmp_path):
    from modelaas.jobs.backends.process import child_env

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert "PROMETHEUS_MULTIPROC_DIR" not in child_env(Settings(data_dir=tmp_path))
