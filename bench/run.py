"""modelaas against DEEPaaS 2.6.0 and a bare Starlette ceiling, in one run, on this machine.

    python bench/run.py                 # the full run (about 5 minutes), prints the table
    python bench/run.py --write         # ... and rewrites docs/benchmarks.md and its plot
    python bench/run.py --quick         # a tiny run (seconds), to check the command works

Needs wrk (Debian package) and network access to PyPI the first time (DEEPaaS is installed
into a cached virtual environment under ~/.cache/modelaas-bench). Everything listens on
127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    BENCH,
    MIB,
    MODELS,
    Server,
    deepaas_venv,
    free_port,
    latencies,
    median,
    this_python,
    training_probe,
    upload,
    wrk,
)

ROOT = BENCH.parent
PREDICT = "/v2/models/trivial/predict/?x=3"


def servers(kind: str, model: str, data_dir: Path, cache: Path) -> Server:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(MODELS)}
    if kind == "deepaas":
        venv = deepaas_venv(cache)
        cmd = [str(venv / "bin" / "deepaas-run"), "--listen-ip", "127.0.0.1", "--listen-port", str(port)]
        return Server(kind, [*cmd, "--model-name", model], {**os.environ}, port)
    if kind == "hello":
        cmd = [this_python(), "-m", "uvicorn", "hello:app", "--port", str(port), "--no-access-log"]
        return Server(kind, [*cmd, "--log-level", "warning", "--app-dir", str(BENCH)], env, port)
    workers = "2" if kind == "modelaas-2" else "1"
    cmd = [this_python(), "-m", "modelaas", "serve", "--listen-port", str(port), "--data-dir", str(data_dir)]
    cmd += ["--model", f"bench_models.{model}", "--model-name", model, "--workers", workers, "--log-level", "warning"]
    return Server(kind, cmd, env, port)


def run(args: argparse.Namespace) -> dict[str, Any]:
    systems = ["deepaas", "modelaas", "modelaas-2", "hello"] if not args.no_deepaas else ["modelaas", "hello"]
    conns = [16] if args.quick else [1, 16, 64]
    seconds = 1.0 if args.quick else args.seconds
    upload_size = (16 if args.quick else 512) * MIB
    results: dict[str, Any] = {"machine": _machine(), "predict": {}, "ready_s": {}, "upload": {}, "training": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in systems:
            srv = servers(kind, "trivial", Path(tmp) / kind, args.cache)
            srv.start()
            try:
                results["ready_s"][kind] = srv.wait_predict(PREDICT)
                wrk(srv.url, PREDICT, 4, 0.5)  # warm up
                results["predict"][kind] = {c: wrk(srv.url, PREDICT, c, seconds) for c in conns}
                if kind in ("deepaas", "modelaas-2"):
                    idle = median(latencies(srv.url, 50 if args.quick else 200))
                    probe = training_probe(srv, is_modelaas=kind != "deepaas", train_seconds=30)
                    results["training"][kind] = {"idle_p50_ms": idle, **probe}
            finally:
                srv.stop()
            print(f"  {kind}: done", file=sys.stderr)
        for kind in [s for s in systems if s in ("deepaas", "modelaas")]:
            srv = servers(kind, "upload", Path(tmp) / f"{kind}-upload", args.cache)
            srv.start()
            try:
                _wait_get(srv, "/v2/models/")
                results["upload"][kind] = upload(srv, "/v2/models/upload/predict/", upload_size)
                results["upload"][kind]["size_mib"] = upload_size / MIB
            finally:
                srv.stop()
    return results


def _wait_get(srv: Server, path: str) -> None:
    import time

    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(srv.url + path, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{srv.name} did not start")


def _machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tiny run that only checks everything works")
    parser.add_argument("--no-deepaas", action="store_true", help="skip DEEPaaS (no PyPI access needed)")
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk duration per measurement")
    parser.add_argument("--write", action="store_true", help="rewrite docs/benchmarks.md and docs/img/benchmarks.png")
    parser.add_argument("--json", type=Path, help="also save the raw results here")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "modelaas-bench")
    args = parser.parse_args(argv)
    from report import render_markdown, write_plot

    results = run(args)
    text = render_markdown(results, command="python bench/run.py" + (" --quick" if args.quick else ""))
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.write:
        (ROOT / "docs" / "benchmarks.md").write_text(text)
        write_plot(results, ROOT / "docs" / "img" / "benchmarks.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
