"""The examples in README.md run as written."""

import re
from pathlib import Path

from modelaas.model.adapters import TypedAdapter

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_typed_model_runs(make_client):
    (source,) = python_blocks(README.read_text())
    namespace: dict = {}
    exec(compile(source, str(README), "exec"), namespace)
    client = make_client(TypedAdapter("classifier", namespace["Classifier"]()))
    r = client.post("/v2/models/classifier/predict/", files={"image": ("cat.jpg", b"\xff\xd8")}, data={"top_k": "2"})
    assert r.status_code == 200 and r.json() == {"label": "cat", "probability": 0.9}
    r = client.post("/v2/models/classifier/predict/", files={"image": ("cat.jpg", b"")}, data={"top_k": "11"})
    assert r.status_code == 422 and list(r.json()) == ["top_k"]


def test_readme_test_command_is_what_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "test-command" in ci
    block = README.read_text().split("<!-- test-command -->")[1].split("<!-- /test-command -->")[0]
    assert "pip install -e '.[dev,postgres,ray]'" in block and "scripts/check" in block


def test_jobs_doc_training_example_runs(tmp_path):
    from modelaas import TrainingContext
    from modelaas.model.adapters import TypedAdapter

    (source,) = python_blocks((README.parent / "docs" / "jobs.md").read_text())
    namespace: dict = {}
    exec(compile(source, "docs/jobs.md", "exec"), namespace)
    adapter = TypedAdapter("classifier", namespace["Classifier"]())
    context = TrainingContext(tmp_path)
    result = adapter.train(adapter.train_params.validate({"epochs": "4"}), context)
    assert result == {"loss": 0.25} and context.progress == 1.0 and context.metrics == {"loss": 0.25}
    assert (tmp_path / "weights.bin").read_bytes() == b"..."


def test_readme_cli_examples_run(server, tmp_path):
    import os
    import shlex
    import subprocess
    import sys

    block = README.read_text().split("<!-- cli-examples -->")[1].split("<!-- /cli-examples -->")[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("modelaas ")]
    assert len(commands) >= 6
    srv = server()  # nothing installed in the test environment: the demo model
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a photo")
    env = {**os.environ, "MODELAAS_DATA_DIR": str(tmp_path / "cli-data")}
    for command in commands:
        argv = [a.replace("http://127.0.0.1:5000", srv.url) for a in shlex.split(command)]
        r = subprocess.run(
            [sys.executable, "-m", "modelaas", *argv[1:]], cwd=tmp_path, env=env, capture_output=True, timeout=120
        )
        assert r.returncode == 0, (command, r.stderr.decode())
    assert (tmp_path / "scores.png").read_bytes().startswith(b"\x89PNG")
