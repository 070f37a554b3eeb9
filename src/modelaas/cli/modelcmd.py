"""``modelaas predict|train <model> --<arg> ...``: one subcommand per model, built on demand.

The model's arguments become the subcommand's options, so ``modelaas predict <model>
--help`` lists them with types, choices and defaults. Locally the model is imported
in-process (``warm()`` first); with ``--remote URL`` the options come from the server's
API document and the work is done by the server.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import click

from modelaas.cli.options import build_options
from modelaas.errors import ModelNotFound
from modelaas.model.params import Param
from modelaas.settings import Settings

# options that may also be written after the model name
GLOBAL_FLAGS = ("--remote", "--token", "--model")


@dataclass
class Target:
    """Where the work happens: a model loaded here, or one on a server."""

    name: str
    params: Sequence[Param]
    adapter: Any = None
    remote: Any = None


class ModelCommands(click.Group):
    """A group whose subcommands are the models; ``method`` is ``predict`` or ``train``."""

    def __init__(self, method: str, run: Callable[..., int], **kwargs: Any) -> None:
        # unknown options are the model's: they reach the subcommand (deepaas-cli style, no model name)
        kwargs.setdefault("context_settings", {"ignore_unknown_options": True, "max_content_width": 100})
        super().__init__(invoke_without_command=True, callback=click.pass_context(self._no_model_named), **kwargs)
        self.method = method
        self.run = run

    def _no_model_named(self, ctx: click.Context, **_: Any) -> int | None:
        """No model name and no options: the only model there is, with no arguments."""
        if ctx.invoked_subcommand is not None:
            return None
        name = _default_model(ctx)
        command = self.get_command(ctx, name)
        assert command is not None
        with command.make_context(name, [], parent=ctx) as sub:
            return command.invoke(sub)

    # --- where global options may sit -------------------------------------
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = _hoist_global_flags(list(args))
        rest = super().parse_args(ctx, args)
        return rest

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # deepaas-cli style: no model name, the options right away (one model installed or --model given)
        if args and args[0].startswith("-") and args[0] not in ("--help", "-h"):
            args = [_default_model(ctx), *args]
        if not args:
            args = [_default_model(ctx)]
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # list the models without importing them (a model import can take minutes)
        names = self.list_commands(ctx)
        if names:
            with formatter.section("Models"):
                formatter.write_dl([(n, f"modelaas {self.method} {n} --help") for n in names])

    def list_commands(self, ctx: click.Context) -> list[str]:
        try:
            return _model_names(ctx)
        except Exception:
            return []

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = _resolve(ctx, name, self.method)
        options = build_options(target.params, taken=_taken(self.method))

        def callback(**values: Any) -> int:
            from modelaas.serve.logs import configure_logging

            configure_logging(os.environ.get("MODELAAS_LOG_LEVEL", "info"))  # model logs go to stderr
            return self.run(ctx, target, values)

        command = click.Command(
            name,
            params=[*common_options(self.method), *options],
            callback=callback,
            help=f"{self.method.capitalize()} with model {name!r}. Options are the model's arguments.",
            context_settings={"max_content_width": 100},
        )
        return command


def _taken(method: str) -> set[str]:
    names = {"output", "deepaas_method_output", "help", "remote", "token", "model", "warm", "nowarm"}
    if method == "train":
        names |= {"output-dir", "detach"}
    return names


def common_options(method: str) -> list[click.Option]:
    options = [
        click.Option(
            ["--output", "--deepaas_method_output", "_output"],
            type=click.Path(dir_okay=False, writable=True),
            default=None,
            help="Write the result to this file (JSON, or the raw answer for other types).",
        ),
        click.Option(["--warm/--nowarm", "_warm"], default=True, help="Call the model's warm() first (local only)."),
    ]
    if method == "train":
        options += [
            click.Option(
                ["--output-dir", "_output_dir"],
                type=click.Path(file_okay=False),
                default=None,
                help="Where a local training writes its artefacts (default: a new folder in the data dir).",
            ),
            click.Option(["--detach", "_detach"], is_flag=True, help="With --remote: print the job and return."),
        ]
    return options


def _hoist_global_flags(args: list[str]) -> list[str]:
    """Move ``--remote URL`` (and friends) written after the model name to the front."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        flag, eq, _value = arg.partition("=")
        if flag in GLOBAL_FLAGS and i > 0:
            if eq:
                front.append(arg)
            elif i + 1 < len(args):
                front += [arg, args[i + 1]]
                i += 1
            else:
                rest.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _root_options(ctx: click.Context) -> dict[str, Any]:
    return dict(ctx.params)


def _settings(ctx: click.Context) -> Settings:
    params = _root_options(ctx)
    return Settings.load({"model": params.get("model")})


def _model_names(ctx: click.Context) -> list[str]:
    params = _root_options(ctx)
    if params.get("remote"):
        from modelaas.cli.remote import client_for

        with client_for(params) as client:
            return [m["name"] for m in client.models()]
    from modelaas.model.loader import select_models

    return [ref.name for ref in select_models(_settings(ctx))]


def _default_model(ctx: click.Context) -> str:
    names = _model_names(ctx)
    if len(names) == 1:
        return names[0]
    raise click.UsageError(f"Name the model: one of {', '.join(names) or 'none installed'}.")


def _resolve(ctx: click.Context, name: str, method: str) -> Target:
    params = _root_options(ctx)
    if params.get("remote"):
        from modelaas.cli.remote import remote_target

        return remote_target(params, name, method)
    from modelaas.model.loader import load, select_models

    settings = _settings(ctx)
    refs = {ref.name: ref for ref in select_models(settings)}
    if name not in refs:
        raise ModelNotFound(name, list(refs))
    adapter = load(refs[name], settings)
    described = adapter.predict_params if method == "predict" else adapter.train_params
    return Target(name=name, params=tuple(described or ()), adapter=adapter)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Whatever model code prints goes to stderr, even from C code or subprocesses:
    stdout carries only the result."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (embedded use): Python-level redirection only
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 1)
        os.close(saved)
