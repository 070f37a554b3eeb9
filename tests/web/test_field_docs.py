"""DEEPaaS field metadata: an ``enum`` documents usual values (not checked), ``format`` is kept.
The server, the CLI and the documents agree on what is accepted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

URL = "/v2/models/v2-field-docs/predict/"
MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def test_a_metadata_enum_is_documentation_a_one_of_is_a_rule(make_client):
    client = make_client("v2_field_docs")
    ok = client.post(URL, data={"mode": "other", "tags": ["c"]})
    assert ok.status_code == 200, ok.text
    assert ok.json()["predictions"]["mode"] == "other" and ok.json()["predictions"]["tags"] == ["c"]
    assert client.post(URL, data={"kind": "z"}).status_code == 422


def test_the_document_tells_usual_values_from_choices_and_keeps_format(make_client):
    doc = make_client("v2_field_docs").get("/openapi.json").json()
    body = doc["paths"][URL]["post"]["requestBody"]["content"]
    props = next(iter(body.values()))["schema"]["properties"]
    assert props["mode"]["examples"] == ["fast", "exact"] and "enum" not in props["mode"]
    assert props["kind"]["enum"] == ["x", "y"]
    assert props["secret"]["format"] == "password"
    assert props["tags"]["items"]["examples"] == ["a", "b"]


def _cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(MODELS), "MODELAAS_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-m", "modelaas", "predict", "--model", "v2_field_docs", "v2-field-docs", *args]
    return subprocess.run(command, env=env, capture_output=True, timeout=120)


def test_the_cli_accepts_what_the_server_accepts(tmp_path):
    done = _cli("--mode", "other", "--tags", "c", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["predictions"]["mode"] == "other"
    refused = _cli("--kind", "z", tmp_path=tmp_path)
    assert refused.returncode == 2 and b"'z' is not one of 'x', 'y'" in refused.stderr
    helped = " ".join(_cli("--help", tmp_path=tmp_path).stdout.decode().split())
    assert "usually one of: fast, exact" in helped
