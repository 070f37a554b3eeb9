"""The CLI accepts what the server accepts, for a field whose ``enum`` only documents choices.

The corpus model compat-field-docs (tests/compat/packages/compat-small) declares
``metadata={"enum": [...]}`` without a ``OneOf`` validator: DEEPaaS puts the enum in its API
description and checks nothing, so the server hands any value to the model. ``modelaas
predict`` must too, and answer what the server answers.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "compat" / "packages" / "compat-small"
TARGET = "compat_small.field_docs"
NAME = "compat-field-docs"


def test_a_value_outside_the_documented_enum_is_accepted_as_by_the_server(make_client, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(PACKAGE))
    client = make_client(TARGET, model_name=NAME)
    served = client.post(f"/v2/models/{NAME}/predict/", data={"shape": "triangle", "api-key": "s3cret"})
    assert served.status_code == 200, served.text
    assert served.json()["predictions"] == {"api_key_length": 6, "shape": "triangle", "documented": False}

    env = {**os.environ, "PYTHONPATH": str(PACKAGE), "MODELAAS_DATA_DIR": str(tmp_path / "cli-data")}
    command = [sys.executable, "-m", "modelaas", "predict", "--model", TARGET]
    cli = subprocess.run(
        [*command, "--shape", "triangle", "--api-key", "s3cret"], env=env, capture_output=True, timeout=120
    )
    assert cli.returncode == 0, cli.stderr.decode()
    assert json.loads(cli.stdout) == served.json()
