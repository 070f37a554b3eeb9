"""The ``modelaas`` command line: thin commands over the runtime."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from modelaas.cli.errors import run_cli
from modelaas.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="modelaas", prog_name="modelaas")
def cli() -> None:
    """Serve machine-learning models over the DEEPaaS REST API."""


cli.add_command(serve)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    sys.exit(run_cli(cli, argv))
