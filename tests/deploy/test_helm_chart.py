"""The Helm chart in deploy/helm/modelaas: linted and rendered by helm, every manifest
validated against the Kubernetes API schemas (kubernetes-validate, strict: unknown fields
fail), and what the chart promises checked on the rendered objects.

No cluster runs here: nothing is installed. helm comes from ``scripts/get-helm`` (CI runs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "modelaas"
KUBERNETES = ["1.29.0", "1.37.0"]  # the oldest still supported by major clouds, and the newest known
MULTI = ["--set", "replicaCount=3", "--set", "postgresql.existingSecret=modelaas-db"]


def helm_binary() -> str:
    found = os.environ.get("MODELAAS_HELM") or shutil.which("helm") or str(ROOT / ".tools" / "helm")
    if not Path(found).exists():
        if os.environ.get("CI"):
            raise AssertionError("helm is missing: scripts/get-helm puts it at .tools/helm")
        pytest.skip("helm is not installed (scripts/get-helm)")
    return found


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=60)


def render(*args: str) -> dict[str, dict[str, Any]]:
    """``helm template`` of the chart: the manifests by kind (each kind once)."""
    proc = helm("template", "demo", str(CHART), "--namespace", "models", *args)
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs)
    return by_kind


def validate(manifests: dict[str, dict[str, Any]]) -> None:
    for kind, manifest in manifests.items():
        if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked field by field in its own test
        for version in KUBERNETES:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                raise AssertionError(f"{kind} is not valid for Kubernetes {version}: {exc.message}") from None


def container(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (only,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def env(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(manifests)["env"]}


def test_chart_lints_clean():
    proc = helm("lint", "--strict", str(CHART))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = helm("lint", "--strict", str(CHART), *MULTI, "--set", "autoscaling.enabled=true")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_one_pod_by_default_with_probes_and_a_drain_shorter_than_the_grace_period():
    manifests = render()
    validate(manifests)
    assert set(manifests) == {"Deployment", "Service"}  # no PDB for a single pod: it would block node drains
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    c = container(manifests)
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
    from modelaas.serve.supervisor import GRACE_SECONDS  # how long modelaas drains after SIGTERM

    assert pre_stop > 0 and pod["terminationGracePeriodSeconds"] > pre_stop + GRACE_SECONDS
    assert pod["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/data", "/tmp"}
    assert env(manifests)["MODELAAS_DATA_DIR"] == "/data" and "MODELAAS_JOBS_DB" not in env(manifests)
    service = manifests["Service"]
    assert service["spec"]["selector"] == manifests["Deployment"]["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == c["ports"][0]["name"] == "http"


def test_several_pods_share_postgresql_and_tokens_from_secrets_under_a_disruption_budget():
    manifests = render(*MULTI, "--set", "tokens.existingSecret=modelaas-tokens", "--set", "settings.workers=2")
    validate(manifests)
    assert manifests["Deployment"]["spec"]["replicas"] == 3
    variables = env(manifests)
    assert variables["MODELAAS_JOBS_DB"] == {"secretKeyRef": {"name": "modelaas-db", "key": "url"}}
    assert variables["MODELAAS_TOKENS"] == {"secretKeyRef": {"name": "modelaas-tokens", "key": "tokens"}}
    assert variables["MODELAAS_WORKERS"] == "2"
    pdb = manifests["PodDisruptionBudget"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == manifests["Deployment"]["spec"]["selector"]["matchLabels"]


def test_image_by_digest():
    digest = "sha256:" + "0f" * 32
    manifests = render("--set", f"image.digest={digest}", "--set", "image.repository=registry.example/my-model")
    assert container(manifests)["image"] == f"registry.example/my-model@{digest}"


def test_autoscaling_on_cpu_and_on_a_prometheus_metric():
    manifests = render(*MULTI, "--set", "autoscaling.enabled=true")
    validate(manifests)
    hpa = manifests["HorizontalPodAutoscaler"]
    assert "replicas" not in manifests["Deployment"]["spec"]  # the HPA owns it
    assert hpa["spec"]["scaleTargetRef"]["name"] == manifests["Deployment"]["metadata"]["name"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]

    manifests = render(
        *MULTI,
        "--set", "autoscaling.enabled=true",
        "--set", "autoscaling.targetCPUUtilizationPercentage=null",
        "--set", "autoscaling.podsMetric.name=modelaas_requests_in_flight",
        "--set-string", "autoscaling.podsMetric.averageValue=4",
    )  # fmt: skip
    validate(manifests)
    (metric,) = manifests["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == "modelaas_requests_in_flight"
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "4"}


def test_service_monitor_scrapes_metrics_of_the_service_port():
    manifests = render(
        "--set", "serviceMonitor.enabled=true",
        "--set", "serviceMonitor.labels.release=prometheus",
        "--set", "serviceMonitor.bearerTokenSecret.name=metrics-token",
        "--set", "serviceMonitor.bearerTokenSecret.key=token",
    )  # fmt: skip
    validate(manifests)
    monitor = manifests["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= manifests["Service"]["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == manifests["Service"]["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": {"name": "metrics-token", "key": "token"}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "replicaCount=2"], "needs a shared job store: set postgresql.existingSecret"),
        (["--set", "autoscaling.enabled=true"], "needs a shared job store"),
        (["--set", "terminationGracePeriodSeconds=40"], "must be longer than preStopSeconds + drainSeconds (45)"),
        (["--set", "settings.jobs_db=sqlite:///x"], "settings.jobs_db is set by the chart"),
        (
            [*MULTI, "--set", "autoscaling.enabled=true", "--set", "autoscaling.targetCPUUtilizationPercentage=null"],
            "autoscaling needs targetCPUUtilizationPercentage or podsMetric.name",
        ),
    ],
)
def test_values_that_would_break_a_deployment_are_refused(args, message):
    proc = helm("template", "demo", str(CHART), *args)
    assert proc.returncode != 0 and message in proc.stderr
