"""``modelaas predict <model> --<arg> ...`` (in-process, or on a server with ``--remote``)."""

from __future__ import annotations

import asyncio
import inspect
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from modelaas.answers import render
from modelaas.cli.modelcmd import ModelCommands, Target, _settings, stdout_to_stderr
from modelaas.cli.options import raw_values
from modelaas.cli.output import emit_answer, spinner
from modelaas.errors import ModelaasError, ValidationError, from_model_exception


def run_predict(ctx: click.Context, target: Target, values: dict[str, Any]) -> int:
    output = values.pop("_output")
    warm = values.pop("_warm")
    raw = raw_values(target.params, values)
    if target.remote is not None:
        from modelaas.cli.remote import remote_predict

        remote_predict(target, raw, output)
        return 0
    adapter = target.adapter
    if adapter.predict_params is None:
        from modelaas.errors import NotImplementedByModel

        raise NotImplementedByModel(f"Model {target.name!r} does not implement predict.")
    media = None
    if adapter.media_types:
        raw.setdefault("accept", adapter.media_types[0])
    kwargs = validate(adapter.predict_params, raw)
    fetch_dir = None
    if any(p.extra.get("fetch") for p in adapter.predict_params):  # URL inputs: fetched as the server does
        from modelaas.destinations import FetchPolicy
        from modelaas.model.urlfile import fetch_url_files

        fetch_dir = tempfile.mkdtemp(prefix="modelaas-fetch-")
        policy = FetchPolicy.from_settings(_settings(ctx))
        try:
            kwargs = asyncio.run(fetch_url_files(adapter.predict_params, kwargs, Path(fetch_dir), policy))
        except BaseException:
            shutil.rmtree(fetch_dir, ignore_errors=True)
            raise
    if adapter.media_types:
        media = str(kwargs.get("accept") or adapter.media_types[0])
    with stdout_to_stderr():
        if warm:
            with spinner(f"Warming {target.name}..."):
                adapter.warm()
        try:
            with spinner(f"Predicting with {target.name}..."):
                output_value = adapter.predict(kwargs)
            if inspect.isawaitable(output_value):
                output_value = asyncio.run(_await(output_value))
        except ModelaasError:
            raise
        except Exception as exc:
            raise from_model_exception(exc, model=target.name, method="predict") from exc
    try:
        emit_answer(render(adapter, output_value, media), output)
    finally:
        if fetch_dir is not None:
            shutil.rmtree(fetch_dir, ignore_errors=True)
    return 0


async def _await(value: Any) -> Any:
    return await value


def validate(params: Any, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate, naming options (``--demo-int``) rather than fields in the message."""
    try:
        return dict(params.validate(raw))
    except ValidationError as exc:
        lines = [f"--{field}: {' '.join(_flat(msgs))}" for field, msgs in exc.errors.items()]
        error = ValidationError(exc.errors)
        error.message = "Invalid arguments:\n  " + "\n  ".join(lines)
        raise error from None


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
