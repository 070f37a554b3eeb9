"""``modelaas token new|hash``: access tokens for ``--tokens-file`` and ``MODELAAS_TOKENS``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from modelaas.errors import ConfigError


@click.group()
def token() -> None:
    """Make access tokens. Servers keep only their sha256 digests (docs/security.md)."""


@token.command("new")
@click.option("--scopes", default="predict", show_default=True, help="Comma-separated: predict, train, metrics, admin.")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append the token's entry (its digest, not the token) to this tokens file, created private (0600).",
)
def new(scopes: str, path: Path | None) -> int:
    """Print a new random token on stdout, once, and the entry that grants it SCOPES."""
    from modelaas.tokens import hash_token, new_token, parse_entries

    secret = new_token()
    entry = f"{scopes} {hash_token(secret)}"
    parse_entries(entry, source="--scopes")  # unknown scopes are refused here, not at the server's start
    if path is not None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(entry + "\n")
        click.echo(f"Added an entry for scopes {scopes} to {path}.", err=True)
    else:
        click.echo(f"Entry for --tokens-file or MODELAAS_TOKENS: {entry}", err=True)
    click.echo(secret)
    return 0


@token.command("hash")
def hash_() -> int:
    """Read a token on stdin (never from the command line) and print its sha256: digest."""
    from modelaas.tokens import hash_token

    secret = sys.stdin.readline().strip()
    if not secret:
        raise ConfigError('Give the token on stdin, e.g.: printf %s "$TOKEN" | modelaas token hash')
    click.echo(hash_token(secret))
    return 0
