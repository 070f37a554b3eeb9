"""Pieces of the benchmark: servers in process groups, wrk, memory and timing probes."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

BENCH = Path(__file__).resolve().parent
MODELS = BENCH / "models"
MIB = 1024 * 1024
DEEPAAS_VERSION = "2.6.0"


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
        subprocess.run([*pip, f"deepaas=={DEEPAAS_VERSION}", str(models)], check=True)
    ready.write_text("ok\n")
    return root


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

    def wait_predict(self, path: str, timeout: float = 60) -> float:
        """Seconds from start until the first successful prediction."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {err[-2000:]}")
            try:
                if httpx.post(self.url + path, timeout=1).status_code == 200:
                    return time.perf_counter() - self.started_at
            except httpx.TransportError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{self.name} was not ready after {timeout} s")

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


def wrk(url: str, path: str, connections: int, seconds: float) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) of POST ``path`` under wrk."""
    script = BENCH / "post.lua"
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script), url + path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    result = {"rps": rps}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            value = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            result[f"p{pct}"] = value
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["errors"] = float(errors.group(1)) if errors else 0.0
    return result


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
    finally:
        done.set()
        sampler.join()
    return {"seconds": time.perf_counter() - start, "growth_mib": (peak[0] - baseline) / MIB}


def latencies(url: str, n: int, stop: Callable[[], bool] = lambda: False) -> list[float]:
    """``n`` sequential trivial predictions; their latencies in ms."""
    out = []
    with httpx.Client() as client:
        for _ in range(n):
            if stop():
                break
            start = time.perf_counter()
            client.post(url + "/v2/models/trivial/predict/?x=3").raise_for_status()
            out.append((time.perf_counter() - start) * 1000)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def training_probe(server: Server, *, is_modelaas: bool, train_seconds: float) -> dict[str, Any]:
    """Submit-to-running latency, predict latency during training, cancel-to-gone latency."""
    url = server.url + "/v2/models/trivial/train/"
    before = {p.pid for p in server.tree()}
    start = time.perf_counter()
    record = httpx.post(url, data={"seconds": str(train_seconds)}, timeout=30).json()
    job = record["uuid"]
    while record.get("status") != "running":
        time.sleep(0.002)
        record = httpx.get(url + job, timeout=30).json()
    to_running = time.perf_counter() - start
    time.sleep(0.5)  # let the training take its core
    busy = latencies(server.url, 200)
    trainers = [p for p in server.tree() if p.pid not in before]
    start = time.perf_counter()
    answer = httpx.delete(url + job, timeout=60)
    gone = float("nan")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alive = [p for p in trainers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            gone = time.perf_counter() - start
            break
        time.sleep(0.01)
    return {
        "submit_to_running_s": to_running,
        "busy_p50_ms": median(busy),
        "cancel_status": answer.status_code,
        "cancel_answer": (answer.json().get("status") if answer.headers.get("content-type", "").startswith(
            "application/json") else answer.text[:60]),
        "cancel_to_gone_s": gone,
        "training_processes": len(trainers),
    }


def python_for(root: Path) -> str:
    return str(root / "bin" / "python")


def this_python() -> str:
    return sys.executable
