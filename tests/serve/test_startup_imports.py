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


HEAVY = [
    "sqlalchemy",
    "modelaas.cli.predict",
    "modelaas.cli.jobs",
    "modelaas.jobs.store",
    "pydantic",
    "prometheus_client",
    "opentelemetry",
]


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
    """The job store opens once the model is ready; httpx when a URL comes; pydantic for typed models;
    prometheus_client once the model is ready."""
    imported = _imported_after(
        "import modelaas.serve.worker, modelaas.web.app, modelaas.runtime, modelaas.model.loader",
        ["sqlalchemy", "httpx", "pydantic", "modelaas.jobs.store", "prometheus_client"],
    )
    assert not any(imported.values()), imported


def test_a_serving_process_app_opens_its_job_store_after_ready_then_settles(settings, tmp_path) -> None:
    """Under a supervisor (a server id given) the store opens after ``on_ready``, before ``on_settled``."""
    import threading

    from starlette.testclient import TestClient

    from modelaas.runtime import Runtime
    from modelaas.web.app import create_app
    from support import load_fixture

    calls: list[tuple[str, bool]] = []
    settled = threading.Event()
    runtime = Runtime(settings, [load_fixture("trainer:Trainer")])
    holder: dict[str, object] = {}

    def note(what: str) -> None:
        calls.append((what, holder["app"].state.modelaas.jobs.store_open))  # type: ignore[attr-defined]
        if what == "settled":
            settled.set()

    from modelaas.jobs.wiring import SupervisedTrainings

    app = create_app(
        settings,
        runtime=runtime,
        trainings=SupervisedTrainings(settings, "supervised"),
        on_ready=lambda: note("ready"),
        on_settled=lambda: note("settled"),
    )
    holder["app"] = app
    with TestClient(app) as client:
        assert settled.wait(30)
        assert calls == [("ready", False), ("settled", True)]
        assert client.get("/v2/models/trainer/train/").status_code == 200  # the store it opened
