"""The start-up banner: where each model comes from, the job store without its password."""

from __future__ import annotations

from pathlib import Path

from modelaas.serve.banner import banner, shown_store
from modelaas.settings import Settings


def test_the_demo_says_why_it_is_served(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("modelaas.model.loader.installed_models", lambda: [])
    lines = banner(Settings(data_dir=tmp_path), [("modelaas-demo", "typed")], "http://127.0.0.1:5000")
    (model,) = [line for line in lines if line.startswith("Model ")]
    assert model.startswith("Model 'modelaas-demo' (typed): the built-in demo, served because no model is installed")
    assert "http://127.0.0.1:5000/api" in "\n".join(lines) and "http://127.0.0.1:5000/ui" in "\n".join(lines)
    assert "Prometheus metrics: http://127.0.0.1:5000/metrics" in lines


def test_a_model_given_by_reference_and_the_metrics_port(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, model="pkg.mod:Thing", model_name="thing", metrics_port=9100, workers=3)
    lines = banner(s, [("thing", "v2")], "http://127.0.0.1:5000")
    assert "Model 'thing' (v2): --model pkg.mod:Thing" in lines
    assert "Serving processes: 3" in lines and "Prometheus metrics: http://127.0.0.1:9100/metrics" in lines


def test_the_job_store_is_shown_without_its_password(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, jobs_db="postgresql://jobs:s3cr3t-pw@db.example.org:5432/modelaas")
    assert shown_store(s) == "postgresql://jobs:<redacted>@db.example.org:5432/modelaas"
    assert shown_store(Settings(data_dir=tmp_path)) == f"SQLite {tmp_path / 'jobs.sqlite3'}"
    line = next(x for x in banner(s, [], "http://h:1") if x.startswith("Job store"))
    assert "s3cr3t-pw" not in line
