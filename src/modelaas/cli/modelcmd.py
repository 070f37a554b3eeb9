"""``modelaas predict|train <model> --<arg> ...``: one subcommand per model, built on demand.

The model's arguments become the subcommand's options, so ``modelaas predict <model>
--help`` lists them with types, choices and defaults. Where the work is done is a
:class:`~modelaas.cli.sources.ModelSource`: the models here (imported in-process,
``warm()`` first), or with ``--remote URL`` a server, whose API document gives the options.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import click

from modelaas.cli.options import build_options, raw_values
from modelaas.cli.sources import ModelSource, Run

# options that may also be written after the model name
GLOBAL_FLAGS = ("--remote", "--token", "--model")
_GIVEN = "modelaas.given"


class ModelCommands(click.Group):
    """A group whose subcommands are the models; ``method`` is ``predict`` or ``train``."""

    def __init__(self, method: str, **kwargs: Any) -> None:
        # unknown options are the model's: they reach the subcommand (deepaas-cli style, no model name)
        kwargs.setdefault("context_settings", {"ignore_unknown_options": True, "max_content_width": 100})
        kwargs["params"] = [*source_options(method), *kwargs.get("params", ())]
        super().__init__(invoke_without_command=True, callback=click.pass_context(self._no_model_named), **kwargs)
        self.method = method

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
        # --help is eager: it lists the models before --remote/--model are parsed; they are read here
        ctx.meta[_GIVEN] = _given_flags(args)
        return super().parse_args(ctx, args)

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
            return _source(ctx).names()
        except Exception:
            return []

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        source = _source(ctx)
        target = source.resolve(name, self.method)
        options = build_options(target.params, taken=_taken(self.method))

        def callback(**values: Any) -> int:
            from modelaas.serve.logs import configure_logging

            configure_logging(os.environ.get("MODELAAS_LOG_LEVEL", "info"))  # model logs go to stderr
            run = Run(
                output=values.pop("_output"),
                warm=values.pop("_warm"),
                output_dir=values.pop("_output_dir", None),
                detach=values.pop("_detach", False),
            )
            raw = raw_values(target.params, values)
            return source.predict(target, raw, run) if self.method == "predict" else source.train(target, raw, run)

        command = click.Command(
            name,
            params=[*common_options(self.method), *options],
            callback=callback,
            help=f"{self.method.capitalize()} with model {name!r}. Options are the model's arguments.",
            context_settings={"max_content_width": 100},
        )
        return command


def source_options(method: str) -> list[click.Option]:
    """``--remote``, ``--token``, ``--model``: where the work is done (see :func:`~modelaas.cli.sources.source_for`)."""
    remote = "Ask the modelaas server at URL instead of loading the model."
    if method == "train":
        remote = "Submit a job to the modelaas server at URL and follow it."
    return [
        click.Option(["--remote"], metavar="URL", help=remote),
        click.Option(["--token"], envvar="MODELAAS_TOKEN", help="Bearer token for --remote."),
        click.Option(
            ["--model"],
            metavar="PKG.MODULE:ATTR",
            help="Load this object as the model (no entry point; imported from the current directory too).",
        ),
    ]


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


def _given_flags(args: list[str]) -> dict[str, str]:
    """The values of ``--remote``/``--token``/``--model`` in ``args``."""
    given: dict[str, str] = {}
    for i, arg in enumerate(args):
        if arg == "--":
            break
        flag, eq, value = arg.partition("=")
        if flag in GLOBAL_FLAGS and (eq or i + 1 < len(args)):
            given[flag.lstrip("-")] = value if eq else args[i + 1]
    return given


def source_for(options: Mapping[str, Any]) -> ModelSource:
    """``--remote URL`` (with ``--token``): that server; else the models installed here (or ``--model``)."""
    if options.get("remote"):
        from modelaas.cli.remote import RemoteModels

        return RemoteModels(options["remote"], token=options.get("token"))
    from modelaas.cli.local import LocalModels

    return LocalModels(model=options.get("model"))


def _source(ctx: click.Context) -> ModelSource:
    """Where this command's work is done, from ``--remote``/``--token``/``--model`` (read once per command)."""
    found: ModelSource | None = ctx.meta.get("modelaas.source")
    if found is None:
        given = {"token": os.environ.get("MODELAAS_TOKEN"), **ctx.meta.get(_GIVEN, {})}
        found = source_for({**given, **{k: v for k, v in ctx.params.items() if v is not None}})
        ctx.meta["modelaas.source"] = found
    return found


def _default_model(ctx: click.Context) -> str:
    names = _source(ctx).names()
    if len(names) == 1:
        return names[0]
    raise click.UsageError(f"Name the model: one of {', '.join(names) or 'none installed'}.")
