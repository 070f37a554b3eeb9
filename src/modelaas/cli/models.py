"""``modelaas models``, and the deepaas-cli verbs ``get_metadata`` and ``warm``."""

from __future__ import annotations

import click

from modelaas.cli.output import emit_json
from modelaas.errors import ModelNotFound
from modelaas.model.adapters import ModelAdapter
from modelaas.model.loader import installed_models, load, select_models
from modelaas.settings import Settings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--model",
    metavar="PKG.MODULE:ATTR",
    help="Show the name this object is served under (as 'modelaas serve --model' would), instead.",
)
def models(as_json: bool, model: str | None) -> int:
    """List the installed models and the interface each speaks (without importing them)."""
    refs = select_models(Settings.load({"model": model})) if model else installed_models()
    rows = [
        {"name": r.name, "interface": r.interface, "target": r.target, "package": r.distribution, "group": r.source}
        for r in refs
    ]
    if as_json:
        emit_json(rows, None)
        return 0
    if not rows:
        click.echo("No model is installed; 'modelaas serve' would serve the built-in demo model.", err=True)
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "interface", "package", "target")
    for row in rows:
        table.add_row(row["name"], row["interface"] or "?", row["package"] or "", row["target"])
    Console().print(table)
    return 0


def _load(model_name: str | None, model: str | None) -> ModelAdapter:
    refs = select_models(Settings.load({"model": model, "model_name": model_name}))
    if len(refs) != 1:
        raise (
            ModelNotFound(model_name or "", [r.name for r in refs])
            if model_name
            else click.UsageError("Several models are installed: name one with --model-name.")
        )
    return load(refs[0])


_model_name = click.option("--model-name", envvar="DEEPAAS_V2_MODEL", help="The installed model to use.")
_model = click.option(
    "--model", metavar="PKG.MODULE:ATTR", help="Load this object as the model (from the current directory too)."
)


@click.command("get_metadata")
@_model_name
@_model
def get_metadata(model_name: str | None, model: str | None) -> int:
    """Print a model's metadata as JSON (deepaas-cli's get_metadata)."""
    adapter = _load(model_name, model)
    emit_json({"id": adapter.name, "name": adapter.name, **adapter.metadata()}, None)
    return 0


@click.command("warm")
@_model_name
@_model
def warm(model_name: str | None, model: str | None) -> int:
    """Import a model and run its warm(), to check that it loads (deepaas-cli's warm)."""
    adapter = _load(model_name, model)
    adapter.warm()
    click.echo(f"Model {adapter.name!r} ({adapter.interface}) is warm.", err=True)
    return 0
