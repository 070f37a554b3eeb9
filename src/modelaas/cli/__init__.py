"""The ``modelaas`` command line: thin commands over the runtime.

Each command's module is imported only when that command runs (or ``--help`` lists
them): ``modelaas serve`` starts its serving processes without first importing what
``predict``, ``train`` or ``jobs`` need, and neither do the serving processes, which
import the main module again.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import click

from modelaas.cli.errors import run_cli

COMMANDS = {
    "serve": ("modelaas.cli.serve", "serve"),
    "models": ("modelaas.cli.models", "models"),
    "predict": ("modelaas.cli.predict", "predict"),
    "train": ("modelaas.cli.train", "train"),
    "jobs": ("modelaas.cli.jobs", "jobs"),
    "versions": ("modelaas.cli.versions", "versions"),
    "reload": ("modelaas.cli.versions", "reload"),
    "token": ("modelaas.cli.token", "token"),
    "dockerfile": ("modelaas.cli.dockerfile", "dockerfile"),
    "get_metadata": ("modelaas.cli.models", "get_metadata"),
    "warm": ("modelaas.cli.models", "warm"),
}
"""Command name -> (module, attribute), in the order ``--help`` lists them."""


class LazyGroup(click.Group):
    """A group whose commands are imported when looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        command = getattr(importlib.import_module(target[0]), target[1])
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="modelaas", prog_name="modelaas")
def cli() -> None:
    """Serve machine-learning models over the DEEPaaS REST API."""


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    sys.exit(run_cli(cli, argv))
