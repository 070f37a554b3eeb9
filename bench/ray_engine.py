"""What ``--engine ray`` costs per request, against the process engine, in the same run.

Both serve the trivial benchmark model with one copy of it (``--workers 1`` against
``--replicas 1`` on a private local Ray) on 127.0.0.1. Two measurements each:

* latency of sequential keep-alive requests from one client (the added milliseconds are
  the Ray proxy's hop to the replica and back);
* throughput under wrk with 16 connections (skipped without wrk).

    python bench/ray_engine.py                 # ~2 minutes
    python bench/ray_engine.py --requests 200 --seconds 5

The machine may be busy: figures are indicative; the ratios are what to read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from harness import MODELS, PREDICT, Server, free_port, this_python, wrk


def start(kind: str, data_dir: Path) -> Server:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(MODELS), os.environ.get("PYTHONPATH")]))}
    env["RAY_AUTH_MODE"] = "disabled"  # a private Ray on loopback
    cmd = [this_python(), "-m", "modelaas", "serve", "--listen-ip", "127.0.0.1", "--listen-port", str(port)]
    cmd += ["--data-dir", str(data_dir / kind), "--model", "bench_models.trivial", "--model-name", "trivial"]
    cmd += ["--log-level", "warning", "--notrain-endpoint"]
    cmd += ["--engine", "ray", "--replicas", "1"] if kind == "ray" else ["--workers", "1"]
    server = Server(kind, cmd, env, port)
    server.start()
    server.wait_predict(PREDICT, timeout=300)
    return server


def stop(server: Server) -> None:
    """SIGTERM to the server alone (a private Ray shares its process group), then the group."""
    if server.proc is not None and server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pass
    server.stop()


def latencies(server: Server, requests: int) -> list[float]:
    """Milliseconds of each of ``requests`` sequential predictions (after 50 to warm up)."""
    out = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(50 + requests):
            started = time.perf_counter()
            r = client.post(PREDICT)
            elapsed = (time.perf_counter() - started) * 1000
            if r.status_code != 200:
                raise RuntimeError(f"{server.name}: {r.status_code} {r.text[:200]}")
            if i >= 50:
                out.append(elapsed)
    return out


def measure(kind: str, data_dir: Path, requests: int, seconds: float) -> dict[str, float]:
    server = start(kind, data_dir)
    try:
        lat = sorted(latencies(server, requests))
        result = {
            "p50_ms": statistics.median(lat),
            "p90_ms": lat[int(len(lat) * 0.9)],
            "mean_ms": statistics.fmean(lat),
        }
        if shutil.which("wrk"):
            w = wrk(server, PREDICT, 16, seconds)
            result.update(rps=w["rps"], wrk_p50_ms=w["p50"], errors=w["errors"], other_cpu=w["other_cpu"])
        return result
    finally:
        stop(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="sequential requests per engine")
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk duration per engine")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelaas-bench-ray-") as tmp:
        results = {kind: measure(kind, Path(tmp), args.requests, args.seconds) for kind in ("process", "ray")}
    p, r = results["process"], results["ray"]
    print("| engine | p50 ms | p90 ms | mean ms | req/s (wrk -c16) |")
    print("|---|---|---|---|---|")
    for kind, v in results.items():
        rps = v.get("rps", float("nan"))
        print(f"| {kind} | {v['p50_ms']:.2f} | {v['p90_ms']:.2f} | {v['mean_ms']:.2f} | {rps:.0f} |")
    print()
    print(f"ray/process sequential p50 latency: {r['p50_ms'] / p['p50_ms']:.2f}x (+{r['p50_ms'] - p['p50_ms']:.2f} ms)")
    if "rps" in p and "rps" in r:
        print(f"ray/process throughput: {r['rps'] / p['rps']:.2f}x")
        print(f"other load on the machine meanwhile: {p['other_cpu']:.2f} / {r['other_cpu']:.2f} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
