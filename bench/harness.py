"""Pieces of the benchmark: servers in process groups, wrk, memory and timing probes."""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

BENCH = Path(__file__).resolve().parent
MODELS = BENCH / "models"
MIB = 1024 * 1024
DEEPAAS_VERSION = "2.6.0"
PREDICT = "/v2/models/trivial/predict/?x=3"
TRAIN = "/v2/models/trivial/train/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deepaas_venv(cache: Path) -> Path:
    """A cached virtual environment with DEEPaaS 2.6.0 and the benchmark models installed."""
    digest = hashlib.sha256()
    for path in sorted(MODELS.rglob("*")):
        if path.is_file() and "egg-info" not in str(path) and "__pycache__" not in str(path):
            digest.update(path.read_bytes())
    root = cache / f"deepaas-{DEEPAAS_VERSION}-{digest.hexdigest()[:12]}"
    ready = root / ".ready"
    if ready.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    venv.EnvBuilder(with_pip=True).create(root)
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        shutil.copytree(MODELS, models, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
        subprocess.run([*pip, f"deepaas=={DEEPAAS_VERSION}", str(models)], check=True, timeout=900)
    ready.write_text("ok\n")
    return root


def wait_for_quiet(max_load: float, timeout: float) -> float:
    """Wait (at most ``timeout`` s) until the 1-minute load average is below ``max_load``; return it."""
    deadline = time.monotonic() + timeout
    while True:
        load = os.getloadavg()[0]
        if load < max_load or time.monotonic() >= deadline:
            return load
        time.sleep(5)


@dataclass
class Server:
    """A server process (and its children) in its own process group."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    port: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {err[-2000:]}")

    def wait_predict(self, path: str, timeout: float = 60) -> float:
        """Seconds from start until the first successful prediction."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1) as client:
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    if client.post(self.url + path).status_code == 200:
                        return time.perf_counter() - self.started_at
                except httpx.TransportError:
                    pass
                time.sleep(0.005)
        raise RuntimeError(f"{self.name} was not ready after {timeout} s")

    def wait_get(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(self.url + path, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not start")

    def tree(self) -> list[psutil.Process]:
        assert self.proc is not None
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss(self) -> int:
        total = 0
        for p in self.tree():
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def cpu(self) -> dict[int, float]:
        """CPU seconds (user + system) used so far by each process of the tree."""
        out = {}
        for p in self.tree():
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return out

    def stop(self) -> None:
        if self.proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # a child that outlived its parent
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.stderr:
            self.proc.stderr.close()


def _busy_cpu() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


def wrk(
    server: Server,
    path: str,
    connections: int,
    seconds: float,
    *,
    timeout: float = 2.0,
    body: str | None = None,
    script: Path | None = None,
) -> dict[str, float]:
    """Requests/s, latency percentiles (ms), and CPU accounting of POST ``path`` under wrk.

    ``body``: a JSON body to send (bench/post_body.lua); ``script``: a wrk script of one's own.

    ``server_us`` is the CPU the server's processes used per answered request (microseconds);
    ``other_cpu`` the CPU (in cores) that neither the server, wrk nor this process used meanwhile:
    what else ran on the machine during the measurement.
    """
    script = script or BENCH / ("post.lua" if body is None else "post_body.lua")
    env = {**os.environ, "BENCH_BODY": body or ""}
    threads = min(2, connections)
    me = psutil.Process()
    before_server, before_me, before_all = server.cpu(), sum(me.cpu_times()[:2]), _busy_cpu()
    before_children = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={max(1, round(timeout))}s",
            "--latency",
            "-s",
            str(script),
            server.url + path,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
        env=env,
    )
    wall = time.perf_counter() - started
    wrk_cpu = _children_cpu() - before_children  # wrk is the only child reaped meanwhile
    after_server, after_me, after_all = server.cpu(), sum(me.cpu_times()[:2]), _busy_cpu()
    out = proc.stdout
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result = {"rps": float(rps.group(1)) if rps else 0.0, "requests": float(total.group(1)) if total else 0.0}
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else float("nan")
        result[f"p{pct}"] = value if result["requests"] else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["errors"] = float(errors.group(1)) if errors else 0.0
    timeouts = re.search(r"Socket errors:.*timeout (\d+)", out)
    result["timeouts"] = float(timeouts.group(1)) if timeouts else 0.0
    server_cpu = sum(v - before_server.get(pid, 0.0) for pid, v in after_server.items())
    result["server_us"] = server_cpu / result["requests"] * 1e6 if result["requests"] else float("nan")
    result["server_cores"] = server_cpu / wall
    result["wrk_cores"] = wrk_cpu / wall
    other = (after_all - before_all) - server_cpu - wrk_cpu - (after_me - before_me)
    result["other_cpu"] = max(0.0, other / wall)
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def multipart_stream(boundary: str, field: str, size: int) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    block = b"\xab" * MIB
    sent = 0
    while sent < size:
        n = min(MIB, size - sent)
        yield block[:n]
        sent += n
    yield f"\r\n--{boundary}--\r\n".encode()


def upload(server: Server, path: str, size: int) -> dict[str, float]:
    """Wall time and peak memory growth of the server's process tree for one large upload."""
    baseline = server.rss()
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], server.rss())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    boundary = "bench-boundary"
    start = time.perf_counter()
    try:
        r = httpx.post(
            server.url + path,
            content=multipart_stream(boundary, "data", size),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
            timeout=600,
        )
        r.raise_for_status()
        answered = r.json()
    finally:
        done.set()
        sampler.join()
    got = answered.get("predictions", answered).get("size") if isinstance(answered, dict) else None
    return {
        "seconds": time.perf_counter() - start,
        "growth_mib": (peak[0] - baseline) / MIB,
        "size_mib": size / MIB,
        "size_ok": float(got == size),
    }


def burning(server: Server, seconds: float = 0.5, threshold: float = 0.4) -> list[psutil.Process]:
    """The processes of the server's tree that used more than ``threshold`` of a core for ``seconds``."""
    procs = server.tree()
    before = {}
    for p in procs:
        try:
            before[p.pid] = sum(p.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    time.sleep(seconds)
    out = []
    for p in procs:
        try:
            if sum(p.cpu_times()[:2]) - before.get(p.pid, 0.0) > threshold * seconds:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def training_probe(server: Server, *, train_seconds: float, predict_seconds: float) -> dict[str, Any]:
    """Submit-to-running latency, predict latency idle and during training, cancel-to-gone latency.

    "Running" is what the server says; "gone" is when the process that burned the CPU for the
    training is dead (DEEPaaS runs trainings in its worker pool process, modelaas in a process
    of their own). Predict latency is wrk at one connection; DEEPaaS queues predictions behind a
    training in its pool, so they may not be answered at all (reported as such).
    """
    idle = wrk(server, PREDICT, 1, predict_seconds)
    url = server.url + TRAIN
    before = {p.pid for p in server.tree()}
    start = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        record = client.post(url, data={"seconds": str(train_seconds)}).json()
        job = record["uuid"]
        while record.get("status") not in ("running", "done", "failed", "error"):
            time.sleep(0.002)
            record = client.get(url + job).json()
        to_running = time.perf_counter() - start
        time.sleep(0.5)  # let it take its core
        trainers = [p for p in server.tree() if p.pid not in before] or burning(server)
        busy = wrk(server, PREDICT, 1, predict_seconds)
        start = time.perf_counter()
        answer = client.delete(url + job, timeout=60)
    gone = float("nan")
    deadline = time.monotonic() + 15
    while trainers and time.monotonic() < deadline:
        alive = []
        for p in trainers:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            gone = time.perf_counter() - start
            break
        time.sleep(0.005)
    try:
        cancel_answer = answer.json().get("status")
    except ValueError:
        cancel_answer = " ".join(answer.text[:60].split())  # one line: it goes into a table cell
    return {
        "submit_to_running_s": to_running,
        "idle_p50_ms": idle["p50"],
        "busy_p50_ms": busy["p50"],
        "busy_answered": busy["requests"],
        "cancel_status": answer.status_code,
        "cancel_answer": cancel_answer,
        "cancel_to_gone_s": gone,
        "training_processes": len(trainers),
    }


def this_python() -> str:
    return sys.executable
