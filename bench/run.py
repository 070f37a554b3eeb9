"""modelaas against DEEPaaS 2.6.0 and a bare Starlette ceiling, in one run, on this machine.

    python bench/run.py                 # the full run (about 6 minutes), prints the tables
    python bench/run.py --write         # ... and rewrites docs/benchmarks.md and its plot
    python bench/run.py --quick         # a tiny run (seconds), to check the command works
    python bench/run.py --mlserver-venv /tmp/mlserver-venv   # ... with MLServer 1.7.1 in the OIP part

The Open Inference Protocol part (bench/oip_bench.py: infer over REST and gRPC on a scikit-learn
iris model) measures MLServer 1.7.1 from its own virtual environment (--mlserver-venv or
MODELAAS_BENCH_MLSERVER), and says so when there is none.

Needs wrk (Debian package) and network access to PyPI the first time (DEEPaaS is installed
into a cached virtual environment under ~/.cache/modelaas-bench). Everything listens on
127.0.0.1 and stops by itself. A full run first waits (up to --wait seconds) for the
1-minute load average to drop below --max-load, and records what else used the CPU during
each measurement ("other CPU"): figures are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import batching
from harness import (
    BENCH,
    MIB,
    MODELS,
    PREDICT,
    Server,
    deepaas_venv,
    free_port,
    this_python,
    training_probe,
    upload,
    wait_for_quiet,
    wrk,
)

ROOT = BENCH.parent
MODELAAS_FLAGS = {
    "modelaas": [],
    "modelaas-2": ["--workers", "2"],
    "modelaas-inline": ["--predict-inline", "always"],
    "modelaas-nometrics": ["--nometrics"],
}


def server(kind: str, model: str, data_dir: Path, cache: Path) -> Server:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(MODELS), os.environ.get("PYTHONPATH")]))}
    if kind == "deepaas":
        venv = deepaas_venv(cache)
        cmd = [str(venv / "bin" / "deepaas-run"), "--listen-ip", "127.0.0.1", "--listen-port", str(port)]
        return Server(kind, [*cmd, "--model-name", model], {**os.environ}, port)
    if kind == "hello":
        cmd = [this_python(), "-m", "uvicorn", "hello:app", "--host", "127.0.0.1", "--port", str(port)]
        return Server(kind, [*cmd, "--no-access-log", "--log-level", "warning", "--app-dir", str(BENCH)], env, port)
    cmd = [this_python(), "-m", "modelaas", "serve", "--listen-ip", "127.0.0.1", "--listen-port", str(port)]
    cmd += ["--data-dir", str(data_dir), "--model", f"bench_models.{model}", "--model-name", model]
    return Server(kind, [*cmd, "--log-level", "warning", *MODELAAS_FLAGS[kind]], env, port)


def inline_supported() -> bool:
    """Whether this modelaas has the ``predict_inline`` setting (``--predict-inline``)."""
    from modelaas.settings import field_names

    return "predict_inline" in field_names()


def metrics_supported() -> bool:
    """Whether this modelaas has the ``metrics`` setting (``--nometrics``)."""
    from modelaas.settings import field_names

    return "metrics" in field_names()


def run(args: argparse.Namespace) -> dict[str, Any]:
    systems = ["hello", "modelaas", "modelaas-2"]
    if inline_supported():
        systems.append("modelaas-inline")
    if metrics_supported():  # the cost of metrics: default settings (metrics on) against metrics off
        systems.append("modelaas-nometrics")
    if not args.no_deepaas:
        deepaas_venv(args.cache)  # build it (once) before anything is measured
        systems.insert(1, "deepaas")
    if args.systems:  # a part of the run (e.g. modelaas,modelaas-nometrics: the cost of metrics)
        wanted = args.systems.split(",")
        unknown = set(wanted) - set(systems)
        if unknown:
            raise SystemExit(f"--systems: unknown {', '.join(sorted(unknown))}; known: {', '.join(systems)}")
        systems = [s for s in systems if s in wanted]
    conns = [16] if args.quick else [1, 16, 64]
    seconds = 1.0 if args.quick else args.seconds
    rounds = 1 if args.quick else args.rounds
    upload_size = (16 if args.quick else args.upload_mib) * MIB
    train_probe = [s for s in (["modelaas"] if args.quick else ["deepaas", "modelaas", "modelaas-2"]) if s in systems]
    load = os.getloadavg()[0] if args.quick else wait_for_quiet(args.max_load, args.wait)
    results: dict[str, Any] = {
        "machine": _machine(load),
        "command": args.command,
        "predict": {},
        "ready_s": {},
        "upload": {},
        "training": {},
    }
    measured: dict[str, dict[int, list[dict[str, float]]]] = {s: {c: [] for c in conns} for s in systems}
    ready: dict[str, list[float]] = {s: [] for s in systems}
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(rounds):
            for kind in systems:
                srv = server(kind, "trivial", Path(tmp) / f"{kind}-{number}", args.cache)
                srv.start()
                try:
                    ready[kind].append(srv.wait_predict(PREDICT))
                    wrk(srv, PREDICT, 4, 1)  # warm up
                    for c in conns:
                        measured[kind][c].append(wrk(srv, PREDICT, c, seconds))
                    if number == 0 and kind in train_probe:
                        results["training"][kind] = training_probe(
                            srv, train_seconds=30, predict_seconds=1 if args.quick else 2
                        )
                finally:
                    srv.stop()
                _say(f"{kind} (round {number + 1}/{rounds}): done")
        for kind in [s for s in ("deepaas", "modelaas") if s in systems and not args.systems]:
            srv = server(kind, "upload", Path(tmp) / f"{kind}-upload", args.cache)
            srv.start()
            try:
                srv.wait_get("/v2/models/")
                time.sleep(1.0)  # settled: what a server loads after its first answer is not the upload's
                results["upload"][kind] = upload(srv, "/v2/models/upload/predict/", upload_size)
            finally:
                srv.stop()
            _say(f"{kind} upload: done")
    for kind in systems:
        results["ready_s"][kind] = statistics.median(ready[kind])
        results["predict"][kind] = {c: _median_run(measured[kind][c]) for c in conns}
    if not args.no_oip:
        from oip_bench import mlserver_venv, run_oip

        venv = mlserver_venv(args.mlserver_venv)
        if venv is None:
            _say("OIP: no MLServer environment (--mlserver-venv / MODELAAS_BENCH_MLSERVER): MLServer is skipped")
        with tempfile.TemporaryDirectory() as tmp:
            results["oip"] = run_oip(Path(tmp), venv=venv, conns=conns, seconds=seconds, rounds=rounds, say=_say)
    if not args.no_batching:
        if args.no_peers:
            batching.PEERS.clear()
        results["batching"] = batching.run_batching(
            cache=args.cache, seconds=seconds, conns=tuple(conns), say=_say
        )
    results["machine"]["load_end"] = os.getloadavg()[0]
    return results


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median requests/s (its latencies and CPU figures belong together)."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["rounds"] = len(runs)
    return chosen


def _say(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def _machine(load: float) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    except OSError:
        wrk_version = "?"
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit, dirty = "", ""
    return {
        "commit": f"{commit} (with uncommitted changes)" if commit and dirty else commit,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "wrk": wrk_version.split(" [")[0].strip(),
        "load_start": load,
        "date": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tiny run that only checks everything works")
    parser.add_argument("--no-deepaas", action="store_true", help="skip DEEPaaS (no PyPI access needed)")
    parser.add_argument("--no-peers", action="store_true", help="skip the batching peers (LitServe, BentoML, MLServer)")
    parser.add_argument("--no-batching", action="store_true", help="skip the adaptive batching part")
    parser.add_argument("--systems", help="measure only these systems (comma-separated), no upload; e.g. "
                        "modelaas,modelaas-nometrics for the cost of metrics")
    parser.add_argument("--no-oip", action="store_true", help="skip the Open Inference Protocol part")
    parser.add_argument("--mlserver-venv", type=Path, help="virtual environment with mlserver 1.7.1 + mlserver-sklearn")
    parser.add_argument("--seconds", type=float, default=6.0, help="wrk duration per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measure each system this many times; report medians")
    parser.add_argument("--upload-mib", type=int, default=512, help="size of the large upload")
    parser.add_argument("--max-load", type=float, default=0.7, help="wait for a 1-minute load average below this")
    parser.add_argument("--wait", type=float, default=900, help="... but at most this many seconds")
    parser.add_argument("--write", action="store_true", help="rewrite docs/benchmarks.md and docs/img/benchmarks.png")
    parser.add_argument("--json", type=Path, help="also save the raw results here")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "modelaas-bench")
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    args.command = " ".join(["python bench/run.py", *_measuring_options(given)])
    from report import render_markdown, write_plot

    results = run(args)
    text = render_markdown(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.write:
        (ROOT / "docs" / "benchmarks.md").write_text(text)
        write_plot(results, ROOT / "docs" / "img" / "benchmarks.png")
    return 0


def _measuring_options(given: list[str]) -> list[str]:
    """The options that change what is measured: without --write, --json and --json's path."""
    out: list[str] = []
    skip = False
    for arg in given:
        if skip:
            skip = False
        elif arg == "--json":
            skip = True
        elif arg != "--write" and not arg.startswith("--json="):
            out.append(arg)
    return out


if __name__ == "__main__":
    sys.exit(main())
