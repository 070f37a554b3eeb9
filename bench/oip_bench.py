"""The Open Inference Protocol part of bench/run.py: modelaas and MLServer 1.7.1 on one scikit-learn iris model.

MLServer runs from a virtual environment of its own (``pip install mlserver==1.7.1
mlserver-sklearn==1.7.1`` into it; never into modelaas's), given by ``--mlserver-venv`` or
``MODELAAS_BENCH_MLSERVER``; without one, MLServer is skipped and the run says so. The
model is trained once (LogisticRegression on the iris data, with that environment's
scikit-learn when there is one) and saved with joblib; MLServer serves the file through
``mlserver-sklearn``, modelaas through the typed model ``bench_models.iris`` (NDArray in and out).

REST is driven by wrk (the same JSON infer request for every server), gRPC by
bench/grpc_load.py (the same raw-contents request for every server).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from harness import BENCH, MODELS, Server, free_port, this_python, wrk

REST_PATH = "/v2/models/iris/infer"
SCRIPT = BENCH / "oip_post.lua"
TRAIN = (
    "import sys, joblib\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "X, y = load_iris(return_X_y=True)\n"
    "joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), sys.argv[1])\n"
)
ROW = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4], "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}


def mlserver_venv(given: Path | None) -> Path | None:
    """The MLServer environment, if one is given and has ``mlserver`` (else None: skipped)."""
    path = given or (Path(os.environ["MODELAAS_BENCH_MLSERVER"]) if os.environ.get("MODELAAS_BENCH_MLSERVER") else None)
    if path is None:
        return None
    if not (path / "bin" / "mlserver").exists():
        raise SystemExit(f"{path} has no bin/mlserver: install mlserver==1.7.1 and mlserver-sklearn==1.7.1 into it.")
    return path


def train(python: str, out: Path) -> Path:
    subprocess.run([python, "-c", TRAIN, str(out)], check=True, timeout=300)
    return out


class GrpcServer(Server):
    """A server that also answers gRPC on ``grpc_port``."""

    grpc_port: int = 0


def modelaas_server(tmp: Path, model: Path, workers: int, *, inline: bool = False) -> GrpcServer:
    port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(MODELS), os.environ.get("PYTHONPATH")])),
        "BENCH_IRIS_MODEL": str(model),
    }
    cmd = [this_python(), "-m", "modelaas", "serve", "--listen-ip", "127.0.0.1", "--listen-port", str(port)]
    cmd += ["--data-dir", str(tmp / f"modelaas-{workers}"), "--model", "bench_models.iris:Iris", "--model-name"]
    cmd += ["iris", "--grpc-port", str(grpc_port), "--workers", str(workers), "--log-level", "warning"]
    name = "modelaas" if workers == 1 else f"modelaas-{workers}"
    if inline:
        cmd += ["--predict-inline", "always"]
        name += "-inline"
    srv = GrpcServer(name, cmd, env, port)
    srv.grpc_port = grpc_port
    return srv


def mlserver_server(venv: Path, tmp: Path, model: Path) -> GrpcServer:
    port, grpc_port, metrics = free_port(), free_port(), free_port()
    root = tmp / "mlserver"
    (root / "iris").mkdir(parents=True, exist_ok=True)
    settings = {"host": "127.0.0.1", "http_port": port, "grpc_port": grpc_port, "metrics_port": metrics}
    (root / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": "iris",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model), "version": "1"},
    }
    (root / "iris" / "model-settings.json").write_text(json.dumps(model_settings))
    srv = GrpcServer("mlserver", [str(venv / "bin" / "mlserver"), "start", str(root)], {**os.environ}, port)
    srv.grpc_port = grpc_port
    return srv


def ready(srv: GrpcServer, timeout: float = 120) -> list[int]:
    """Wait until the server infers; its labels for the two rows of ``ROW`` (both servers must agree)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            srv._check_alive()
            try:
                r = client.post(srv.url + REST_PATH, json=ROW)
                if r.status_code == 200:
                    return [int(v) for v in r.json()["outputs"][0]["data"]]
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"{srv.name} did not answer infer within {timeout} s")


def grpc_load(srv: GrpcServer, connections: int, seconds: float) -> dict[str, float]:
    cmd = [this_python(), str(BENCH / "grpc_load.py"), f"127.0.0.1:{srv.grpc_port}", "iris"]
    cmd += ["--connections", str(connections), "--seconds", str(seconds)]
    before = sum(srv.cpu().values())
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 120)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    used = sum(srv.cpu().values()) - before
    result["server_us"] = used / result["requests"] * 1e6 if result["requests"] else float("nan")
    return result


def run_oip(tmp: Path, *, venv: Path | None, conns: list[int], seconds: float, rounds: int, say: Any) -> dict[str, Any]:
    """Measure REST and gRPC infer of every system; medians over ``rounds``."""
    model = train(str(venv / "bin" / "python") if venv else this_python(), tmp / "iris.joblib")
    systems: list[tuple[str, Any]] = [("modelaas", lambda: modelaas_server(tmp, model, 1))]
    systems.append(("modelaas-2", lambda: modelaas_server(tmp, model, 2)))
    systems.append(("modelaas-inline", lambda: modelaas_server(tmp, model, 1, inline=True)))
    if venv is not None:
        systems.insert(0, ("mlserver", lambda: mlserver_server(venv, tmp, model)))
    runs: dict[str, dict[str, dict[int, list[dict[str, float]]]]] = {
        name: {"rest": {c: [] for c in conns}, "grpc": {c: [] for c in conns}} for name, _ in systems
    }
    labels: dict[str, list[int]] = {}
    for number in range(rounds):
        for name, make in systems:
            srv = make()
            srv.start()
            try:
                labels[name] = ready(srv)
                wrk(srv, REST_PATH, 4, 1, script=SCRIPT)  # warm up
                for c in conns:
                    runs[name]["rest"][c].append(wrk(srv, REST_PATH, c, seconds, script=SCRIPT))
                grpc_load(srv, 4, 1)
                for c in conns:
                    runs[name]["grpc"][c].append(grpc_load(srv, c, seconds))
            finally:
                srv.stop()
            say(f"OIP {name} (round {number + 1}/{rounds}): done")
    if len({tuple(v) for v in labels.values()}) != 1:
        raise RuntimeError(f"the servers disagree on the iris labels: {labels}")
    out: dict[str, Any] = {"mlserver": venv is not None, "labels": next(iter(labels.values())), "systems": {}}
    for name, by_proto in runs.items():
        out["systems"][name] = {
            proto: {c: sorted(rs, key=lambda r: r["rps"])[len(rs) // 2] for c, rs in by_c.items()}
            for proto, by_c in by_proto.items()
        }
    return out


def render_oip(oip: dict[str, Any]) -> list[str]:
    """The OIP section of docs/benchmarks.md."""
    lines = [
        "## Open Inference Protocol: scikit-learn iris",
        "",
        "The same fitted LogisticRegression (iris), one row per request, `POST /v2/models/iris/infer` with JSON",
        "tensors (wrk) and `ModelInfer` over gRPC with raw contents (bench/grpc_load.py, one HTTP/2 connection per",
        "8 calls in flight); the client runs on the same machine.",
        "",
        "* `mlserver`: MLServer 1.7.1 with mlserver-sklearn 1.7.1, its default settings (one inference worker)",
        "* `modelaas`: `modelaas serve --grpc-port ...`, one serving process; the typed model `bench_models.iris`",
        "* `modelaas-2`: the same with `--workers 2`",
        "* `modelaas-inline`: one process, `--predict-inline always` (predict on the event loop's thread)",
        "",
    ]
    if not oip["mlserver"]:
        lines += [
            "**MLServer was not measured** (no `--mlserver-venv` / `MODELAAS_BENCH_MLSERVER`): no ratios.",
            "",
        ]
    lines += [
        "| system | protocol | connections | requests/s | p50 ms | p99 ms | server CPU µs/request |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, by_proto in oip["systems"].items():
        for proto, by_c in by_proto.items():
            for c, r in by_c.items():
                lines.append(
                    f"| {name} | {proto} | {c} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                    f"{r.get('server_us', float('nan')):,.0f} |"
                )
    lines.append("")
    return lines


def oip_targets(oip: dict[str, Any]) -> list[str]:
    """Rows of the targets table: REST requests/s ≥ 5x MLServer at 16, p99 below MLServer at every concurrency.

    The 5x target is judged at equal process counts: MLServer's defaults run two processes (its HTTP
    server and one inference worker), so modelaas runs two serving processes (``modelaas-2``); the
    one-process ratio is shown beside it.
    """
    systems = oip["systems"]
    if not oip["mlserver"] or "mlserver" not in systems:
        return ["| OIP REST vs MLServer 1.7.1 | not measured (no MLServer environment) | - |"]
    ml, me = systems["mlserver"]["rest"], systems["modelaas"]["rest"]
    rows = []
    if 16 in ml:
        if "modelaas-2" in systems:
            two = systems["modelaas-2"]["rest"][16]["rps"]
            ratio = two / ml[16]["rps"] if ml[16]["rps"] else float("inf")
            rows.append(
                "| OIP REST iris, 16 connections, two processes each (`--workers 2`; MLServer: HTTP server + "
                f"one inference worker): ≥ 5x MLServer requests/s | {ratio:.1f}x | {'yes' if ratio >= 5 else 'no'} |"
            )
        ratio = me[16]["rps"] / ml[16]["rps"] if ml[16]["rps"] else float("inf")
        rows.append(
            f"| OIP REST iris, 16 connections, one modelaas process: requests/s vs MLServer | {ratio:.1f}x | - |"
        )
    shown = ", ".join(f"{c}: {me[c]['p99']:.2f} vs {ml[c]['p99']:.2f} ms" for c in ml)
    met = all(me[c]["p99"] < ml[c]["p99"] for c in ml)
    rows.append(
        f"| OIP REST p99 below MLServer at every concurrency (one process) | {shown} | {'yes' if met else 'no'} |"
    )
    gml, gme = systems["mlserver"]["grpc"], systems["modelaas"]["grpc"]
    if 16 in gml:
        ratio = gme[16]["rps"] / gml[16]["rps"] if gml[16]["rps"] else float("inf")
        rows.append(f"| OIP gRPC iris, 16 calls in flight: requests/s vs MLServer (no target) | {ratio:.1f}x | - |")
    return rows


if __name__ == "__main__":  # python bench/oip_bench.py [--mlserver-venv DIR] [--quick]: only this part
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlserver-venv", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        result = run_oip(
            Path(tmp_dir),
            venv=mlserver_venv(args.mlserver_venv),
            conns=[16] if args.quick else [1, 16, 64],
            seconds=1.0 if args.quick else args.seconds,
            rounds=args.rounds,
            say=lambda text: print(f"  {text}", file=sys.stderr, flush=True),
        )
    print("\n".join([*render_oip(result), "| target | measured | met |", "|---|---|---|", *oip_targets(result)]))
