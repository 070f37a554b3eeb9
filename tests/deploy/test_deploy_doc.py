"""The commands of docs/deploy.md are true: their flags exist, ``modelaas dockerfile`` runs as
shown, and the ``helm install`` values render."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from modelaas.cli import cli
from modelaas.cli.errors import run_cli

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deploy.md"


def commands(prefix: str) -> list[list[str]]:
    """Each command in the doc's bash blocks that starts with ``prefix``, continuation lines joined."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].strip()
            if line.startswith(prefix):
                found.append(shlex.split(line))
    return found


def test_every_modelaas_flag_in_the_doc_exists():
    shown = commands("modelaas ")
    assert {argv[1] for argv in shown} == {"serve", "dockerfile"}
    for argv in shown:
        command = cli.get_command(click.Context(cli), argv[1])
        assert command is not None
        known = {opt for p in command.params for opt in [*p.opts, *p.secondary_opts]}
        flags = {a.split("=")[0] for a in argv[2:] if a.startswith("-") and a != "-"}
        assert flags <= known, (argv, flags - known)


def test_the_dockerfile_commands_run_as_shown(tmp_path, capsys):
    package = tmp_path / "my-model"
    package.mkdir()
    (package / "pyproject.toml").write_text('[project]\nname = "my-model"\nversion = "1"\n')
    shown = commands("modelaas dockerfile")
    assert len(shown) >= 3
    for argv in shown:
        args = [str(package) if a == "path/to/my-model" else a for a in argv[1:]]
        code = run_cli(cli, args)
        _, err = capsys.readouterr()
        assert code == 0, (argv, err)
    assert (package / "Dockerfile").exists() and (package / ".dockerignore").exists()


def test_the_helm_install_command_renders():
    from test_helm_chart import CHART, render, validate

    (install,) = commands("helm install")
    assert install[2] == "my-model" and install[3] == "deploy/helm/modelaas"
    manifests = render(*install[4:])
    validate(manifests)
    assert manifests["Deployment"]["spec"]["replicas"] == 3 and CHART.exists()
    (container,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/my-model:1.0"


def test_the_measured_overhead_is_in_the_doc():
    text = DOC.read_text()
    if "| ray |" not in text or "cd bench && python ray_engine.py" not in text:
        pytest.fail("docs/deploy.md lost the Ray engine's measured overhead")
