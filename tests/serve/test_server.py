"""Real server processes: start-up failures, workers, crashes, signals."""

import os
import signal
import time

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow


def test_serves_a_model_given_by_reference(server):
    srv = server("--model", "v2_basic", "--model-name", "basic")
    r = httpx.post(srv.url + "/v2/models/basic/predict/", data={"count": "2"})
    assert r.status_code == 200 and r.json()["predictions"]["args"]["count"] == 2


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--model", "broken_import"], ["Traceback", "a_module_that_does_not_exist_anywhere", "broken_import"]),
        (["--model", "broken_args"], ["Traceback", "get_predict_args", "no checkpoints in /models"]),
        (["--model", "warm_fails:WarmFails"], ["Traceback", "warm()", "checkpoint file is corrupt"]),
        (["--model-name", "no-such-model"], ["No installed model is named 'no-such-model'"]),
    ],
)
def test_a_model_that_cannot_load_stops_start_up(server, args, needles):
    srv = server(*args, ready=False)
    code, err = srv.wait_exit(timeout=60)
    assert code == 3, err
    for needle in needles:
        assert needle in err


def test_port_in_use_is_a_clear_error(server):
    first = server("--model", "v2_basic")
    second = server("--model", "v2_basic", port=first.port, ready=False)
    code, err = second.wait_exit()
    assert code == 2 and f"Port {first.port} on 127.0.0.1 is already in use" in err


def test_crashed_worker_is_replaced_and_others_keep_serving(server):
    srv = server("--model", "crashy:Crashy", "--workers", "2")
    url = srv.url + "/v2/models/crashy/predict/"
    before = set(srv.worker_pids())
    assert len(before) == 2
    try:
        httpx.post(url, data={"how": "segfault"}, timeout=10)
    except httpx.TransportError:
        pass  # the connection dies with the process: expected
    # the other process keeps answering meanwhile
    for _ in range(10):
        assert httpx.post(url, timeout=10).status_code == 200
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pids = set(srv.worker_pids())
        if len(pids) == 2 and pids != before:
            break
        time.sleep(0.1)
    assert len(pids) == 2 and len(pids & before) == 1
    assert srv.proc.poll() is None


def test_kill_9_of_a_worker_is_replaced(server):
    srv = server("--model", "v2_basic")
    (pid,) = srv.worker_pids()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.post(srv.url + "/v2/models/v2-basic/predict/", data={"count": "1"}).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    assert srv.worker_pids() != [pid] and len(srv.worker_pids()) == 1


def test_sigterm_finishes_in_flight_requests_then_exits(server):
    from concurrent.futures import ThreadPoolExecutor

    srv = server("--model", "slow_model:Slow")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            httpx.post, srv.url + "/v2/models/slow-model/predict/", data={"seconds": "1.5"}, timeout=30
        )
        time.sleep(0.5)
        srv.proc.send_signal(signal.SIGTERM)
        answer = pending.result()
    assert answer.status_code == 200 and answer.json()["predictions"] == {"slept": 1.5}
    code, _ = srv.wait_exit(timeout=30)
    assert code == 0


def test_workers_die_with_a_killed_supervisor(server):
    srv = server("--model", "v2_basic", "--workers", "2")
    workers = [psutil.Process(p) for p in srv.worker_pids()]
    srv.proc.kill()  # SIGKILL: no chance to clean up
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert alive == []


def test_a_client_that_left_before_its_turn_is_not_run(server, tmp_path):
    import socket
    from concurrent.futures import ThreadPoolExecutor

    marker = tmp_path / "calls.txt"
    srv = server("--model", "counting:Counting", env={"COUNTING_MARKER": str(marker)})
    url = srv.url + "/v2/models/counting/predict/"
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(httpx.post, url, data={"tag": "busy", "seconds": "1.5"}, timeout=30)
        time.sleep(0.3)
        body = "tag=gone"
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(
                (
                    "POST /v2/models/counting/predict/ HTTP/1.1\r\nHost: x\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n{body}"
                ).encode()
            )
            time.sleep(0.3)  # queued behind the busy call; then the client hangs up
        assert busy.result().status_code == 200
    assert httpx.post(url, data={"tag": "after"}).status_code == 200
    assert marker.read_text().split() == ["busy", "after"]


@pytest.mark.parametrize("level", ["warn", "warning"])
def test_quiet_log_levels_serve(server, level):
    srv = server("--model", "v2_basic", "--log-level", level)
    assert httpx.get(srv.url + "/readyz", timeout=10).status_code == 200


def test_start_up_says_ready_once_not_uvicorns_lines_per_process(server):

    srv = server("--model", "v2_basic", "--workers", "2")
    deadline = time.monotonic() + 30
    while "modelaas is ready on" not in srv.stderr_text() and time.monotonic() < deadline:  # once all are ready
        time.sleep(0.05)
    srv.proc.send_signal(signal.SIGTERM)
    code, err = srv.wait_exit()
    assert code == 0, err
    assert err.count("modelaas is ready on") == 1, err
    assert "uvicorn.error" not in err and "Started server process" not in err, err


def test_metric_files_of_a_killed_server_are_removed_by_the_next(server, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {"TMPDIR": str(tmp)}
    first = server("--model", "v2_basic", env=env)
    (left,) = tmp.glob("modelaas-metrics-*")
    os.killpg(first.proc.pid, signal.SIGKILL)  # no chance to clean up
    first.proc.wait(timeout=30)
    assert left.exists()
    second = server("--model", "v2_basic", env=env)
    assert not left.exists()
    (own,) = tmp.glob("modelaas-metrics-*")
    assert str(second.proc.pid) in own.name
    os.kill(second.proc.pid, signal.SIGTERM)  # stopped in order: it removes its own
    second.wait_exit()
    assert not own.exists()
