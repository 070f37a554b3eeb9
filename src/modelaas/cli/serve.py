"""``modelaas serve``: every setting as a flag (the ``deepaas-run`` flags included)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from modelaas.settings import Settings, field_type


def settings_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command with one option per settings field.

    Options default to ``None`` (not given) so that the config file and environment are
    only overridden by flags the user actually typed.
    """
    for f in reversed(dataclasses.fields(Settings)):
        if f.metadata.get("secret"):  # never on a command line (ps shows it): env or --tokens-file
            continue
        kind = field_type(f.name)
        flag = "--" + f.name.replace("_", "-")
        doc = f.metadata.get("doc", "")
        decls = [flag]
        if f.metadata.get("short"):
            decls.append(f.metadata["short"])
        if kind is bool:  # --x/--nox as deepaas-run has them, and --no-x
            decls = [f"{flag}/--no{f.name.replace('_', '-')}", f" /--no-{f.name.replace('_', '-')}"]
            option = click.option(*decls, f.name, default=None, help=doc)
        elif f.metadata.get("choices"):
            option = click.option(*decls, f.name, type=click.Choice(f.metadata["choices"]), default=None, help=doc)
        else:
            ptype: Any = _ranged(kind, f.metadata) or (click.Path(path_type=Path) if kind is Path else str)
            option = click.option(*decls, f.name, type=ptype, default=None, help=doc, metavar=_metavar(kind))
        func = option(func)
    return func


def _ranged(kind: type, meta: Any) -> click.ParamType | None:
    """An int or float option held to the range the settings field declares (checked before start-up)."""
    if kind not in (int, float):
        return None
    low, high, above = meta.get("minimum"), meta.get("maximum"), meta.get("above")
    if above is not None:
        return click.FloatRange(min=above, min_open=True) if kind is float else click.IntRange(min=above + 1)
    if low is None and high is None:
        return click.INT if kind is int else click.FLOAT
    return click.IntRange(min=low, max=high) if kind is int else click.FloatRange(min=low, max=high)


def _metavar(kind: type) -> str:
    return {int: "INT", float: "SECONDS", Path: "PATH"}.get(kind, "TEXT")


@click.command()
@settings_options
def serve(**flags: Any) -> int:
    """Serve the installed models (or the built-in demo model) over HTTP.

    Accepts the flags of ``deepaas-run`` with the same meaning. Settings also come from
    MODELAAS_* environment variables and --config-file; flags win.
    """
    from modelaas.serve.supervisor import Supervisor

    settings = Settings.load(flags)
    return Supervisor(settings).run()
