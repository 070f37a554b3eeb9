"""Start-up stays lean: the supervisor starts serving processes before the heavy imports.

What a module imports is the cost of every ``modelaas serve`` (and of every serving process,
which imports the main module again): the job store's SQLAlchemy and the other commands'
modules stay out of the path to the first serving process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from modelaas.cli import COMMANDS, cli


def _imported_after(statement: str, modules: list[str]) -> dict[str, bool]:
    code = f"import json, sys; {statement}; print(json.dumps({{m: m in sys.modules for m in {modules!r}}}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return dict(json.loads(out.stdout))


HEAVY = ["sqlalchemy", "modelaas.cli.predict", "modelaas.cli.jobs", "modelaas.jobs.store", "pydantic"]


@pytest.mark.parametrize(
    "statement",
    [
        "import modelaas.__main__",  # what a serving process imports again as its main module
        "from modelaas.cli import cli; cli.get_command(None, 'serve')",
        "import modelaas.serve.supervisor",
    ],
)
def test_the_path_to_the_first_serving_process_imports_nothing_heavy(statement: str) -> None:
    assert _imported_after(statement, HEAVY) == dict.fromkeys(HEAVY, False)


def test_every_command_is_found_under_its_name() -> None:
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert isinstance(command, click.Command) and command.name == name
    assert cli.get_command(click.Context(cli), "nope") is None


def test_a_serving_process_of_a_v2_model_starts_without_the_job_store_the_fetcher_or_pydantic() -> None:
    """The job store opens once the model is ready; httpx when a URL comes; pydantic for typed models."""
    imported = _imported_after(
        "import modelaas.serve.worker, modelaas.web.app, modelaas.runtime, modelaas.model.loader",
        ["sqlalchemy", "httpx", "pydantic", "modelaas.jobs.store"],
    )
    assert not any(imported.values()), imported
