"""The benchmark command keeps working: a tiny run without DEEPaaS. Timings are never asserted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (the Debian package)")
def test_quick_benchmark_run_prints_the_table(tmp_path: Path) -> None:
    raw = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--no-deepaas", "--no-peers", "--json", str(raw)],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout
    assert "## Targets" in out and "## Trivial predict" in out and "| modelaas | 16 |" in out, out
    results = json.loads(raw.read_text())
    assert {"hello", "modelaas", "modelaas-2"} <= set(results["predict"])
    for system, by_conn in results["predict"].items():
        for point in by_conn.values():
            assert point["requests"] > 0 and point["errors"] == 0, (system, point)
    batching = results["batching"]["predict"]
    assert set(batching) == {"modelaas-single", "modelaas-batched"} and "## Adaptive batching" in out
    for system, by_conn in batching.items():
        for point in by_conn.values():
            assert point["requests"] > 0 and point["errors"] == 0, (system, point)
    assert results["upload"]["modelaas"]["size_ok"] == 1.0  # the model saw every byte
    oip = results["oip"]  # no MLServer environment here: modelaas alone, and the page says so
    assert "## Open Inference Protocol" in out and "MLServer was not measured" in out
    assert oip["mlserver"] is False and oip["labels"] == [0, 2]
    for proto in ("rest", "grpc"):
        point = oip["systems"]["modelaas"][proto]["16"]
        assert point["requests"] > 0 and point["errors"] == 0, (proto, point)
    training = results["training"]["modelaas"]
    assert training["cancel_status"] == 200 and training["training_processes"] >= 1, training
