"""The kserve Python SDK's REST client (as published) against a modelaas server."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_kserve_rest_client(oip_server):
    if importlib.util.find_spec("kserve") is None:  # not imported here: see clients/kserve_rest.py
        pytest.skip("the kserve SDK is not installed")
    script = Path(__file__).parent / "clients" / "kserve_rest.py"
    done = subprocess.run(
        [sys.executable, str(script), f"http://{oip_server.url}"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert (seen["live"], seen["ready"], seen["model_ready"]) == (True, True, True)
    assert seen["json"] == {"id": "k-1", "label": [0, 2]}
    assert seen["binary"] == {"label": [0, 2]}
