"""Fixtures for the job backends: a local Ray for the session, and models written for these tests."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BACKEND_MODELS = '''
"""Models for the backend tests (written by tests/jobs/conftest.py)."""

import os
import subprocess
import sys
import time

from modelaas import Model, TrainingContext

ENV_NAMES = ("OMP_NUM_THREADS", "PYTHONBREAKPOINT", "RAY_JOB_ID", "MODELAAS_JOBS_BACKEND", "PYTHONPATH")


class Spawner(Model):
    """Starts a helper process in its group (its command line names the job's folder), then
    runs ``seconds`` ignoring any cancel."""

    def train(self, context: TrainingContext, seconds: float = 60.0) -> dict:
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", str(context.output_dir)])
        print("helper started", flush=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)
        return {"slept": seconds}


class EnvReporter(Model):
    """Returns the environment variables a backend might change."""

    def train(self, context: TrainingContext) -> dict:
        return {name: os.environ.get(name) for name in ENV_NAMES}
'''


@pytest.fixture(scope="session")
def backend_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder with ``backend_models.py``, importable here and in the trainings (and Ray's workers)."""
    folder = tmp_path_factory.mktemp("backend-models")
    (folder / "backend_models.py").write_text(textwrap.dedent(BACKEND_MODELS))
    sys.path.insert(0, str(folder))
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), saved]))
    yield folder
    sys.path.remove(str(folder))
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved


RAY_START_SECONDS: list[float] = []


@pytest.fixture(scope="session")
def ray_module() -> Any:
    """``ray``; without it the tests that need it are skipped, except on CI (``CI`` set) where they fail."""
    try:
        import ray
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Ray is not installed but CI is set: {exc}")
        pytest.skip(f"Ray is not installed ({exc}); pip install 'modelaas[ray]' to test --jobs-backend ray")
    return ray


@pytest.fixture(scope="session")
def ray_session(ray_module: Any, backend_models: Path) -> Iterator[Any]:
    """A small local Ray for the whole session (its workers inherit PYTHONPATH as it is now)."""
    sigterm = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    ray_module.init(
        address="local",
        num_cpus=2,
        object_store_memory=100 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
    )
    RAY_START_SECONDS.append(time.monotonic() - started)
    signal.signal(signal.SIGTERM, sigterm)  # ray.init sets its own on the main thread
    try:
        yield ray_module
    finally:
        ray_module.shutdown()
