"""What an operator sees of a real server: JSON log lines, the start-up banner, /metrics summed
over serving processes, and a real Prometheus scraping it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from support import free_port, wait_for

pytestmark = pytest.mark.slow
MODEL_COUNT = 'modelaas_model_duration_seconds_count{model="observed"}'


def _json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def _samples(text: str, name: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


def _when_counted(url: str, requests: int) -> str:
    """The exposition once it counts ``requests`` answered predict requests."""

    def counted() -> str | None:
        text = httpx.get(url + "/metrics", timeout=5).text
        found = _samples(text, "modelaas_requests_total")
        total = sum(v for k, v in found.items() if 'route="/v2/models/{model}/predict/"' in k)
        return text if total == requests else None

    return wait_for(counted, timeout=15, what=f"{requests} requests to be counted")


def test_json_logs_banner_access_lines_and_model_output_with_request_ids(server):
    srv = server("--model", "observed", "--model-name", "observed", "--log-format", "json", "--workers", "2")
    url = srv.url + "/v2/models/observed/predict/?note=secret-value&x=1"
    r = httpx.post(url, data={"word": "hello"}, headers={"X-Request-ID": "req-ops-1"})
    assert r.status_code == 200
    assert httpx.post(srv.url + "/v2/models/observed/predict/", data={"word": "a" * 10}).status_code == 200
    time.sleep(0.3)
    srv.proc.send_signal(signal.SIGTERM)
    code, err = srv.wait_exit()
    assert code == 0, err
    lines = _json_lines(err)
    assert lines and all({"ts", "level", "logger", "msg", "pid"} <= set(line) for line in lines), err
    messages = [line["msg"] for line in lines]
    assert any(m.startswith("modelaas ") and " on Python " in m for m in messages), messages
    assert any("Model 'observed' (v2): --model observed" in m for m in messages), messages
    assert any(m.startswith("Job store: SQLite ") for m in messages), messages
    assert any("Warming model 'observed'" in m for m in messages) and any("is warm (" in m for m in messages)
    assert any(m.startswith("Shutting down: 2 serving process(es)") for m in messages), messages
    (access,) = [x for x in lines if x["logger"] == "modelaas.access" and x.get("request_id") == "req-ops-1"]
    assert access["method"] == "POST" and access["status"] == 200 and access["model"] == "observed"
    assert access["path"] == "/v2/models/observed/predict/" and access["query"] == ["note", "x"]
    assert access["bytes"] == len(r.content) and access["duration_ms"] > 0
    assert "secret-value" not in err  # query values are never logged
    printed = [line for line in lines if line["msg"] == "observed prints hello"]
    logged = [line for line in lines if line["msg"] == "observed logs hello"]
    assert printed and printed[0]["request_id"] == "req-ops-1" and printed[0]["logger"] == "modelaas.model.output"
    assert logged and logged[0]["request_id"] == "req-ops-1" and logged[0]["level"] == "WARNING"


def test_metrics_are_summed_over_serving_processes(server):
    srv = server("--model", "observed", "--model-name", "observed", "--workers", "2")
    url = srv.url + "/v2/models/observed/predict/"
    pids: list[int] = []
    while len(pids) < 20 or (len(set(pids)) < 2 and len(pids) < 200):  # new connections: both processes answer
        with httpx.Client() as c:
            r = c.post(url)
            assert r.status_code == 200
            pids.append(r.json()["predictions"]["pid"])
    assert len(set(pids)) == 2, "one process answered every connection"
    n = len(pids)
    for _ in range(3):
        assert httpx.post(srv.url + "/v2/models/nope/predict/").status_code == 404
    text = _when_counted(srv.url, n + 3)  # each process adds its tallies to the sums every second
    texts = [httpx.get(srv.url + "/metrics").text for _ in range(6)]  # whichever process answers, the same sums
    assert {_samples(t, "modelaas_model_duration_seconds_count")[MODEL_COUNT] for t in texts} == {n}
    key = 'modelaas_requests_total{method="POST",model="observed",route="/v2/models/{model}/predict/",status="200"}'
    assert _samples(text, "modelaas_requests_total")[key] == n, text
    unmatched = _samples(text, "modelaas_requests_total")
    assert any('model=""' in k and 'status="404"' in k and v == 3 for k, v in unmatched.items()), text
    assert _samples(text, "modelaas_model_duration_seconds_count")[MODEL_COUNT] == n
    assert _samples(text, "observed_calls_total")["observed_calls_total"] == n  # the model's own series
    assert "modelaas_build_info{python=" in text


PROMETHEUS = shutil.which("prometheus")


@pytest.mark.skipif(PROMETHEUS is None and not os.environ.get("CI"), reason="needs Debian's prometheus package")
def test_a_real_prometheus_scrapes_a_two_process_server(server, tmp_path):
    srv = server("--model", "observed", "--model-name", "observed", "--workers", "2")
    for _ in range(7):
        with httpx.Client() as c:
            assert c.post(srv.url + "/v2/models/observed/predict/").status_code == 200
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: modelaas\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{srv.port}']\n"
    )
    storage = tempfile.mkdtemp(dir=tmp_path)
    prom = subprocess.Popen(
        [
            PROMETHEUS or "prometheus",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={storage}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        api = f"http://127.0.0.1:{port}/api/v1/query"

        def total() -> float | None:
            try:
                answer = httpx.get(
                    api, params={"query": 'sum(modelaas_requests_total{model="observed",status="200"})'}, timeout=2
                ).json()
            except (httpx.TransportError, ValueError):
                return None
            result = answer.get("data", {}).get("result", [])
            return float(result[0]["value"][1]) if result else None

        assert wait_for(total, timeout=60, what="Prometheus to scrape modelaas", every=0.5) == 7
        up = httpx.get(api, params={"query": 'up{job="modelaas"}'}).json()["data"]["result"]
        assert up and up[0]["value"][1] == "1"
        count = httpx.get(
            api, params={"query": 'modelaas_model_duration_seconds_count{model="observed"}'}
        ).json()["data"]["result"]
        assert float(count[0]["value"][1]) == 7
        board = json.loads((Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "modelaas.json").read_text())
        for panel in board["panels"]:  # every query of the dashboard is one Prometheus accepts
            for target in panel["targets"]:
                expr = target["expr"].replace("$__rate_interval", "1m").replace("$__range", "5m")
                answer = httpx.get(api, params={"query": expr}).json()
                assert answer["status"] == "success", (panel["title"], answer)
        answer = httpx.get(api, params={"query": 'sum(modelaas_build_info{python!=""})'}).json()
        assert float(answer["data"]["result"][0]["value"][1]) == 1
    finally:
        prom.send_signal(signal.SIGTERM)
        try:
            prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()


def test_a_dead_serving_process_keeps_its_counts_and_is_counted_as_a_restart(server):
    srv = server("--model", "observed", "--model-name", "observed", "--workers", "2")
    url = srv.url + "/v2/models/observed/predict/"
    answered: dict[int, int] = {}
    while len(answered) < 2 and sum(answered.values()) < 200:
        with httpx.Client() as c:
            pid = c.post(url).json()["predictions"]["pid"]
            answered[pid] = answered.get(pid, 0) + 1
    assert len(answered) == 2
    _when_counted(srv.url, sum(answered.values()))  # flushed: a killed process loses only its last second
    os.kill(next(iter(answered)), signal.SIGKILL)
    wait_for(
        lambda: (len(srv.worker_pids()) == 2 and not set(srv.worker_pids()) & {next(iter(answered))}) or None,
        timeout=30,
        what="the killed process to be replaced",
    )

    def restarted() -> str | None:
        try:
            text = httpx.get(srv.url + "/metrics", timeout=5).text
        except httpx.TransportError:
            return None
        return text if _samples(text, "modelaas_worker_restarts_total").get("modelaas_worker_restarts_total") else None

    text = wait_for(restarted, timeout=30, what="the restart to be counted")
    assert _samples(text, "modelaas_worker_restarts_total")["modelaas_worker_restarts_total"] == 1
    assert _samples(text, "modelaas_model_duration_seconds_count")[MODEL_COUNT] == sum(answered.values())


def test_metrics_on_their_own_port_only(server):
    metrics_port = free_port()
    srv = server("--model", "observed", "--workers", "2", "--metrics-port", str(metrics_port))
    other = f"http://127.0.0.1:{metrics_port}"
    assert httpx.post(srv.url + "/v2/models/observed/predict/").status_code == 200
    assert httpx.get(srv.url + "/metrics").status_code == 404
    assert httpx.get(other + "/v2/models/").status_code == 404  # nothing else on the metrics port
    r = httpx.get(other + "/metrics")
    assert r.status_code == 200 and "modelaas_requests_total" in r.text
