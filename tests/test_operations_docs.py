"""docs/operations.md and the Grafana dashboard say what the server does."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from modelaas.model.adapters import TypedAdapter
from support import metric_value

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "operations.md"
DASHBOARD = ROOT / "deploy" / "grafana" / "modelaas.json"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.S)


def _exported(text: str) -> set[str]:
    """The modelaas series of an exposition, without ``_total``."""
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE modelaas_")}
    return {re.sub(r"_total$", "", name) for name in names}




def test_a_models_own_metric_as_documented_is_exported(make_client):
    (source,) = _blocks("python")
    namespace: dict = {}
    exec(compile(source, str(DOC), "exec"), namespace)
    client = make_client(TypedAdapter("classifier", namespace["Classifier"]()))
    series = 'classifier_labels_total{label="short"}'
    before = metric_value(client.get("/metrics").text, series)
    answer = client.post("/v2/models/classifier/predict/", data={"text": "hi"}).json()
    assert answer["predictions"] == {"label": "short"}
    assert metric_value(client.get("/metrics").text, series) - before == 1


def test_every_documented_series_is_exported_and_every_exported_one_documented(make_client):
    text = make_client("v2_basic").get("/metrics").text
    exported = _exported(text)
    documented = set(re.findall(r"^\| `(modelaas_[a-z_]+)`", DOC.read_text(), flags=re.M))
    named = {re.sub(r"_total$", "", name) for name in documented}
    assert named == exported


def test_the_dashboard_uses_only_exported_series(make_client):
    text = make_client("v2_basic").get("/metrics").text
    exported = _exported(text)
    board = json.loads(DASHBOARD.read_text())
    used = set()
    for panel in board["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"modelaas_[a-z_]+", target["expr"]))
    base = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in used}
    assert base and base <= exported, base - exported


@pytest.mark.skipif(shutil.which("promtool") is None and not os.environ.get("CI"), reason="needs Debian's prometheus")
def test_the_documented_alert_rule_is_valid(tmp_path):
    rules = [block for block in _blocks("yaml") if "groups:" in block]
    assert len(rules) == 1
    path = tmp_path / "modelaas-rules.yml"
    path.write_text(rules[0])
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rules found" in done.stdout
