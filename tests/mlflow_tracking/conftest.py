"""An MLflow tracking server for these tests (one per session: it takes seconds to start), on
127.0.0.1 with its own SQLite store and artefacts folder. Without mlflow installed the tests
are skipped, except on CI (``CI`` set) where they fail."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import free_port, wait_for


@pytest.fixture(scope="session")
def mlflow_module() -> Any:
    try:
        import mlflow
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"mlflow is not installed but CI is set: {exc}")
        pytest.skip(f"mlflow is not installed ({exc}); pip install 'modelaas[mlflow]' to test MLflow tracking")
    return mlflow


@pytest.fixture(scope="session")
def mlflow_server(mlflow_module: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a running ``mlflow server``."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    cmd = [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    cmd += ["--backend-store-uri", f"sqlite:///{root}/mlflow.db", "--artifacts-destination", str(root / "artefacts")]
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def ready() -> bool | None:
        if proc.poll() is not None:
            raise AssertionError(f"mlflow server exited: {(root / 'server.log').read_text()[-2000:]}")
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200 or None
        except httpx.TransportError:
            return None

    try:
        wait_for(ready, timeout=90, what="the MLflow server to start", every=0.2)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
        log.close()
