"""The ``modelaas`` command line: thin commands over the runtime."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from modelaas.cli.errors import run_cli
from modelaas.cli.jobs import jobs
from modelaas.cli.models import get_metadata, models, warm
from modelaas.cli.predict import predict
from modelaas.cli.serve import serve
from modelaas.cli.token import token
from modelaas.cli.train import train


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="modelaas", prog_name="modelaas")
def cli() -> None:
    """Serve machine-learning models over the DEEPaaS REST API."""


for command in (serve, models, predict, train, jobs, token, get_metadata, warm):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    sys.exit(run_cli(cli, argv))
