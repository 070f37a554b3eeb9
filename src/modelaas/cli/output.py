"""Printing results: JSON on stdout, raw answers to files, progress on stderr."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from modelaas.errors import BadRequest
from modelaas.runtime.answers import Answer


def emit_json(data: Any, output: str | None) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
        click.echo(f"Result written to {output}", err=True)
    else:
        click.echo(text)


def emit_answer(answer: Answer, output: str | None) -> None:
    if answer.is_json:
        emit_json(answer.json, output)
        return
    if output is None and sys.stdout.isatty():
        raise BadRequest(f"The answer is {answer.media_type}, not text: write it to a file with --output FILE.")
    if answer.path is not None:
        if output:
            shutil.copyfile(answer.path, output)
        else:
            with open(answer.path, "rb") as fh:
                shutil.copyfileobj(fh, sys.stdout.buffer)
    else:
        data = answer.content or b""
        if output:
            Path(output).write_bytes(data)
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
    if output:
        click.echo(f"{answer.media_type} answer written to {output}", err=True)


def emit_bytes(data: bytes, media_type: str, output: str | None) -> None:
    emit_answer(Answer(media_type=media_type, content=data), output)


def interactive() -> bool:
    """Progress bars and prompts only for a person at a terminal."""
    return sys.stderr.isatty()


@contextlib.contextmanager
def spinner(text: str) -> Iterator[None]:
    """A spinner on stderr while ``text`` happens (at a terminal; nothing otherwise)."""
    if not interactive():
        yield
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status(text), logs_above(console):
        yield


@contextlib.contextmanager
def logs_above(console: Any) -> Iterator[None]:
    """Log records printed by ``console`` (rich's handler), above its live spinner or progress
    bar, instead of onto the bar's line."""
    import logging

    from rich.highlighter import NullHighlighter
    from rich.logging import RichHandler

    handler = RichHandler(
        console=console, show_path=False, markup=False, highlighter=NullHighlighter(), log_time_format="%H:%M:%S"
    )
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [handler]
    try:
        yield
    finally:
        root.handlers[:] = saved
