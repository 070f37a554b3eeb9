"""Adaptive batching against the peers, on one model with a fixed cost per call.

    python bench/batching.py            # this part alone (about 3 minutes), prints its table
    python bench/batching.py --quick    # seconds: checks that every server answers

The model (bench/models/bench_models/costly.py, and its copies in bench/peers/) sleeps
5 ms per call plus 0.05 ms per item, as a GPU kernel launch costs nearly the same for 1
input as for 64. Served by modelaas without batching, modelaas with ``@batched``, and by
LitServe 0.2.19 (``max_batch_size``, ``batch_timeout``), BentoML 1.4 (``batchable=True``)
and MLServer 1.7.1 (adaptive batching), each peer from its own cached virtual environment
under ~/.cache/modelaas-bench (built on first use from PyPI; a peer that cannot be installed
is reported, not measured). ``bench/run.py`` runs this part too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BENCH, MODELS, Server, free_port, this_python, wrk

PEERS = {
    "litserve": "litserve==0.2.19",
    "bentoml": "bentoml>=1.4,<1.5",
    "mlserver": "mlserver==1.7.1",
}
BENTOML_ENV = {
    "BENTOML_DO_NOT_TRACK": "true",
    "BENTOML_CONFIG_OPTIONS": "api_server.logging.access.enabled=false",  # its default logs every request
}
FIXED_MS = 5.0
ITEM_MS = 0.05
MAX_BATCH = 64
WAIT_MS = 5.0
CONNS = (1, 16, 64)
DESCRIPTIONS = {
    "modelaas-single": "`modelaas serve`, the model called once per request",
    "modelaas-batched": f"`modelaas serve`, the model `@batched(max_size={MAX_BATCH}, max_wait_ms={WAIT_MS:g})`",
    "litserve": f"LitServe 0.2.19, `max_batch_size={MAX_BATCH}`, `batch_timeout={WAIT_MS / 1000:g}`",
    "bentoml": f"BentoML 1.4, `@bentoml.api(batchable=True, max_batch_size={MAX_BATCH})`, one worker, access log off",
    "mlserver": f"MLServer 1.7.1, `max_batch_size={MAX_BATCH}`, `max_batch_time={WAIT_MS / 1000:g}`, "
    "`parallel_workers=0` (its worker processes do not start beside this machine's uvloop)",
}


class LoggedServer(Server):
    """A server whose output goes to a file (a pipe nobody reads would stall a chatty server)."""

    log: Path | None = None
    cwd: Path | None = None

    def start(self) -> None:
        assert self.log is not None
        self.started_at = time.perf_counter()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.cwd
            )

    def _check_alive(self) -> None:
        assert self.proc is not None and self.log is not None
        if self.proc.poll() is not None:
            text = self.log.read_text(errors="replace")
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {text[-2000:]}")


def peer_venv(cache: Path, name: str, say: Callable[[str], None]) -> Path | None:
    """A cached virtual environment with the peer installed; None (said why) if it cannot be built."""
    root = cache / f"peer-{name}"
    ready = root / ".ready"
    if ready.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    say(f"installing {PEERS[name]} into {root} (once)")
    venv.EnvBuilder(with_pip=True).create(root)
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run([*pip, PEERS[name]], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        say(f"{name}: cannot install {PEERS[name]}: {done.stderr.strip()[-500:]}")
        return None
    ready.write_text("ok\n")
    return root


def _server(kind: str, tmp: Path, cache: Path, say: Callable[[str], None]) -> tuple[LoggedServer, str, str] | None:
    """The server of ``kind``, the path to POST and the body to send; None if the peer is unavailable."""
    port = free_port()
    costs = {"BENCH_FIXED_MS": str(FIXED_MS), "BENCH_ITEM_MS": str(ITEM_MS)}
    env = {**os.environ, **costs}
    if kind.startswith("modelaas"):
        model = "Batched" if kind == "modelaas-batched" else "Single"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(MODELS), os.environ.get("PYTHONPATH")]))
        cmd = [this_python(), "-m", "modelaas", "serve", "--listen-ip", "127.0.0.1", "--listen-port", str(port)]
        cmd += ["--data-dir", str(tmp / kind), "--model", f"bench_models.costly:{model}", "--model-name", "costly"]
        srv = LoggedServer(kind, [*cmd, "--log-level", "warning"], env, port)
        path, body = "/v2/models/costly/predict/", json.dumps({"x": 3.0})
    else:
        root = peer_venv(cache, kind, say)
        if root is None:
            return None
        env["PYTHONPATH"] = str(BENCH / "peers")
        if kind == "litserve":
            cmd = [str(root / "bin" / "python"), str(BENCH / "peers" / "litserve_costly.py"), str(port)]
            srv = LoggedServer(kind, [*cmd, str(MAX_BATCH), str(WAIT_MS / 1000)], env, port)
            path, body = "/predict", json.dumps({"x": 3.0})
        elif kind == "bentoml":
            cmd = [str(root / "bin" / "bentoml"), "serve", "bentoml_costly:Costly", "--host", "127.0.0.1"]
            srv = LoggedServer(kind, [*cmd, "--port", str(port)], {**env, **BENTOML_ENV}, port)
            srv.cwd = BENCH / "peers"
            path, body = "/predict", json.dumps({"x": [3.0]})
        else:
            folder = tmp / "mlserver"
            (folder / "costly").mkdir(parents=True, exist_ok=True)
            settings = {"host": "127.0.0.1", "http_port": port, "grpc_port": free_port(), "metrics_port": free_port()}
            (folder / "settings.json").write_text(json.dumps({**settings, "parallel_workers": 0}))
            model = {
                "name": "costly",
                "implementation": "mlserver_costly.Costly",
                "max_batch_size": MAX_BATCH,
                "max_batch_time": WAIT_MS / 1000,
            }
            (folder / "costly" / "model-settings.json").write_text(json.dumps(model))
            srv = LoggedServer(kind, [str(root / "bin" / "mlserver"), "start", str(folder)], env, port)
            tensor = {"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [3.0]}
            path, body = "/v2/models/costly/infer", json.dumps({"inputs": [tensor]})
    srv.log = tmp / f"{kind}.log"
    return srv, path, body


def _wait_ready(srv: LoggedServer, path: str, body: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    headers = {"Content-Type": "application/json"}
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            srv._check_alive()
            try:
                if client.post(srv.url + path, content=body, headers=headers).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"{srv.name} did not answer {path} within {timeout} s")


def run_batching(
    *, cache: Path, seconds: float, conns: tuple[int, ...] = CONNS, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Each system at each connection count: wrk's figures, and which peers could not be run."""
    results: dict[str, Any] = {
        "model": {"fixed_ms": FIXED_MS, "item_ms": ITEM_MS, "max_batch": MAX_BATCH, "wait_ms": WAIT_MS},
        "predict": {},
        "missing": {},
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for kind in ("modelaas-single", "modelaas-batched", *PEERS):
            made = _server(kind, tmp, cache, say)
            if made is None:
                results["missing"][kind] = "could not be installed"
                continue
            srv, path, body = made
            srv.start()
            try:
                _wait_ready(srv, path, body)
                wrk(srv, path, 16, 1, body=body)  # warm up
                results["predict"][kind] = {c: wrk(srv, path, c, seconds, body=body) for c in conns}
            except RuntimeError as exc:
                results["missing"][kind] = str(exc).strip().splitlines()[-1][:200]
                say(f"{kind}: {exc}")
            finally:
                srv.stop()
            say(f"batching, {kind}: done")
    return results


def targets(b: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for batching's targets; met is None when a figure is missing."""
    p = b["predict"]

    def rps(kind: str, c: int) -> float | None:
        point = p.get(kind, {}).get(c) or p.get(kind, {}).get(str(c))
        return point["rps"] if point else None

    out: list[tuple[str, str, bool | None]] = []
    single, batched = rps("modelaas-single", 64), rps("modelaas-batched", 64)
    if single and batched:
        out.append(("batched at 64 connections >= 8x unbatched", f"{batched / single:.1f}x", batched / single >= 8))
    peers = {k: rps(k, 64) for k in PEERS if rps(k, 64)}
    if batched and peers:
        best = max(peers, key=lambda k: peers[k] or 0)
        ratio = batched / (peers[best] or 1)
        out.append((f"batched at 64 connections >= 1.5x the best peer ({best})", f"{ratio:.2f}x", ratio >= 1.5))
    one = p.get("modelaas-batched", {}).get(1) or p.get("modelaas-batched", {}).get("1")
    if one:
        bound = FIXED_MS + ITEM_MS + 1.0
        out.append((f"batched p50 at 1 connection <= model time + 1 ms ({bound:.2f} ms)", f"{one['p50']:.2f} ms",
                    one["p50"] <= bound))
    return out


def render(b: dict[str, Any]) -> list[str]:
    """The batching section of docs/benchmarks.md."""
    m = b["model"]
    lines = [
        "## Adaptive batching",
        "",
        f"One model, {m['fixed_ms']:g} ms per call plus {m['item_ms']:g} ms per item (`bench/batching.py`; the",
        "peers serve copies of it from `bench/peers/`), POSTed by wrk with a JSON body of one item:",
        "",
        *[f"- **{k}**: {DESCRIPTIONS[k]}" for k in DESCRIPTIONS if k in b["predict"]],
        *[f"- **{k}**: not measured ({why})" for k, why in b["missing"].items()],
        "",
        "| system | conns | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---|---|---|---|---|",
    ]
    for kind, by_conn in b["predict"].items():
        for c, r in sorted(by_conn.items(), key=lambda kv: int(kv[0])):
            failed = int(r["errors"] + r["timeouts"])
            lines.append(f"| {kind} | {c} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {failed} |")
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for name, measured, met in targets(b):
        lines.append(f"| {name} | {measured} | {'yes' if met else 'NO' if met is not None else 'n/a'} |")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short measurement per server")
    parser.add_argument("--seconds", type=float, default=6.0, help="wrk duration per measurement")
    parser.add_argument("--json", type=Path, help="also save the raw results here")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "modelaas-bench")
    args = parser.parse_args(argv)
    conns = (16,) if args.quick else CONNS
    results = run_batching(cache=args.cache, seconds=1.0 if args.quick else args.seconds, conns=conns,
                           say=lambda t: print(t, file=sys.stderr, flush=True))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print("\n".join(render(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
