"""The CLI's one error handler: a message on stderr and the error's exit code."""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from pathlib import Path

import click

from modelaas.errors import ModelaasError, ModelError, ModelLoadError


def report(exc: ModelaasError) -> int:
    """Print ``exc`` for a terminal user and return its exit code.

    When model code run here failed (a local ``predict`` or ``train``), its traceback comes
    first: the user is the model's author. The one-line summary is always the last line.
    """
    cause = exc.__cause__  # model code's own exception (SystemExit included), not one of ours
    if isinstance(exc, ModelLoadError) and exc.traceback_text:
        click.echo(exc.traceback_text.rstrip(), err=True)
    elif isinstance(exc, ModelError) and exc.status >= 500 and cause and not isinstance(cause, ModelaasError):
        click.echo(model_traceback(cause).rstrip(), err=True)
    click.echo(f"Error: {exc.message}", err=True)
    return exc.exit_code


_PACKAGE = str(Path(__file__).resolve().parents[1])


def model_traceback(exc: BaseException) -> str:
    """``exc``'s traceback from the first frame of model code on (modelaas's own calls left out)."""
    formatted = traceback.TracebackException.from_exception(exc)
    frames = list(formatted.stack)
    first = next((i for i, frame in enumerate(frames) if not frame.filename.startswith(_PACKAGE)), 0)
    formatted.stack = traceback.StackSummary.from_list(frames[first:])
    return "".join(formatted.format())


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
