"""``modelaas train <model> --<arg> ...``: a training here, or a job on a server with ``--remote``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from modelaas.cli.modelcmd import ModelCommands, Target, _settings, stdout_to_stderr
from modelaas.cli.options import raw_values
from modelaas.cli.output import emit_json, interactive, spinner
from modelaas.cli.predict import validate
from modelaas.errors import ModelaasError, from_model_exception
from modelaas.model.interface import TrainingContext
from modelaas.model.outputs import to_jsonable


class ConsoleContext(TrainingContext):
    """A training context that shows progress on the terminal."""

    def __init__(self, output_dir: Path, progress: Any = None) -> None:
        super().__init__(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._progress = progress
        self._task = progress.add_task("training", total=1.0) if progress is not None else None

    def _on_report(self) -> None:
        if self._progress is None or self._task is None:
            return
        metrics = " ".join(f"{k}={_short(v)}" for k, v in self.metrics.items())
        self._progress.update(self._task, completed=self.progress or 0.0, description=metrics or "training")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def run_train(ctx: click.Context, target: Target, values: dict[str, Any]) -> int:
    output = values.pop("_output")
    warm = values.pop("_warm")
    output_dir = values.pop("_output_dir")
    detach = values.pop("_detach")
    raw = raw_values(target.params, values)
    if target.remote is not None:
        from modelaas.cli.remote import remote_train

        return remote_train(target, raw, output, detach=detach)
    adapter = target.adapter
    kwargs = validate(adapter.params_for("train"), raw)
    if output_dir is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        output_dir = _settings(ctx).data_dir / "runs" / f"{target.name}-{stamp}"
    progress = _progress() if interactive() else None
    with stdout_to_stderr():
        if warm:
            with spinner(f"Warming {target.name}..."):
                adapter.warm()
        try:
            if progress is not None:
                with progress:
                    result = adapter.train(kwargs, ConsoleContext(Path(output_dir), progress))
            else:
                result = adapter.train(kwargs, ConsoleContext(Path(output_dir)))
        except ModelaasError:
            raise
        except Exception as exc:
            raise from_model_exception(exc, model=target.name, method="train") from exc
    click.echo(f"Artefacts are in {output_dir}", err=True)
    emit_json(to_jsonable(result), output)
    return 0


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )


train = ModelCommands(
    "train",
    run_train,
    name="train",
    help="Run a model's training with its arguments as options (here, or as a job with --remote).",
    params=[
        click.Option(["--remote"], metavar="URL", help="Submit a job to the modelaas server at URL and follow it."),
        click.Option(["--token"], envvar="MODELAAS_TOKEN", help="Bearer token for --remote."),
        click.Option(["--model"], metavar="PKG.MODULE:ATTR", help="Load this object as the model (no entry point)."),
    ],
)
