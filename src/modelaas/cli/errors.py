"""The CLI's one error handler: a message on stderr and the error's exit code."""

from __future__ import annotations

from collections.abc import Sequence

import click

from modelaas.errors import ModelaasError, ModelLoadError


def report(exc: ModelaasError) -> int:
    """Print ``exc`` for a terminal user and return its exit code."""
    if isinstance(exc, ModelLoadError) and exc.traceback_text:
        click.echo(exc.traceback_text.rstrip(), err=True)
    click.echo(f"Error: {exc.message}", err=True)
    return exc.exit_code


def run_cli(command: click.Command, argv: Sequence[str] | None) -> int:
    try:
        rv = command.main(args=list(argv) if argv is not None else None, prog_name="modelaas", standalone_mode=False)
    except ModelaasError as exc:
        return report(exc)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except KeyboardInterrupt:
        return 130
    return rv if isinstance(rv, int) else 0
