"""``modelaas predict <model> --<arg> ...`` (in-process, or on a server with ``--remote``)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import click

from modelaas.cli.modelcmd import ModelCommands, Target, _settings, stdout_to_stderr
from modelaas.cli.options import raw_values
from modelaas.cli.output import emit_answer, spinner
from modelaas.errors import ValidationError


def run_predict(ctx: click.Context, target: Target, values: dict[str, Any]) -> int:
    output = values.pop("_output")
    warm = values.pop("_warm")
    raw = raw_values(target.params, values)
    if target.remote is not None:
        from modelaas.cli.remote import remote_predict

        remote_predict(target, raw, output)
        return 0
    from modelaas.runtime import Runtime

    settings = dataclasses.replace(_settings(ctx), warm=warm)
    runtime = Runtime(settings, [target.adapter])  # the serving path: checks, fetches, answers alike
    try:
        with stdout_to_stderr():
            answer = asyncio.run(_predict(runtime, target.name, raw))
        emit_answer(answer, output)
    finally:
        runtime.close()
    return 0


async def _predict(runtime: Any, name: str, raw: dict[str, Any]) -> Any:
    if runtime.settings.warm:
        with spinner(f"Warming {name}..."):
            await runtime.warm()
    with spinner(f"Predicting with {name}..."):
        try:
            return await runtime.predict(name, raw)
        except ValidationError as exc:
            raise _for_options(exc) from None


def validate(params: Any, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate, naming options (``--demo-int``) rather than fields in the message."""
    try:
        return dict(params.validate(raw))
    except ValidationError as exc:
        raise _for_options(exc) from None


def _for_options(exc: ValidationError) -> ValidationError:
    lines = [f"--{field}: {' '.join(_flat(msgs))}" for field, msgs in exc.errors.items()]
    error = ValidationError(exc.errors)
    error.message = "Invalid arguments:\n  " + "\n  ".join(lines)
    return error


def _flat(messages: Any) -> list[str]:
    if isinstance(messages, dict):
        return [f"item {k}: {' '.join(_flat(v))}" for k, v in messages.items()]
    if isinstance(messages, list):
        return [str(m) for m in messages]
    return [str(messages)]


predict = ModelCommands(
    "predict",
    run_predict,
    name="predict",
    help="Run a model's predict with the model's arguments as options; the answer goes to stdout.",
    params=[
        click.Option(["--remote"], metavar="URL", help="Ask the modelaas server at URL instead of loading the model."),
        click.Option(["--token"], envvar="MODELAAS_TOKEN", help="Bearer token for --remote."),
        click.Option(["--model"], metavar="PKG.MODULE:ATTR", help="Load this object as the model (no entry point)."),
    ],
)
