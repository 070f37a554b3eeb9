"""The models installed here (or given with ``--model``), run in this process.

Predictions go through the :class:`~modelaas.runtime.Runtime`, the serving path itself
(argument checks, URL inputs, answers); trainings run here with a console context that
shows progress. Whatever model code prints goes to stderr: stdout carries only the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click

from modelaas.cli.output import emit_answer, emit_json, interactive, logs_above, spinner
from modelaas.cli.sources import Run, Target, for_options
from modelaas.errors import ConfigError, ModelaasError, ModelNotFound, ValidationError, from_model_exception
from modelaas.model.interface import TrainingContext
from modelaas.model.jsonable import to_jsonable
from modelaas.settings import Settings


class LocalModels:
    def __init__(self, *, model: str | None = None) -> None:
        self.settings = Settings.load({"model": model})

    def names(self) -> list[str]:
        from modelaas.model.loader import select_models

        return [ref.name for ref in select_models(self.settings)]

    def resolve(self, name: str, method: str) -> Target:
        from modelaas.model.loader import load, select_models

        refs = {ref.name: ref for ref in select_models(self.settings)}
        if name not in refs:
            raise ModelNotFound(name, list(refs))
        with stdout_to_stderr():  # what the model prints on import or describing itself is not the result
            adapter = load(refs[name], self.settings)
        described = adapter.predict_params if method == "predict" else adapter.train_params
        return Target(name=name, method=method, params=tuple(described or ()), handle=adapter)

    # ------------------------------------------------------------------ predict
    def predict(self, target: Target, raw: Mapping[str, Any], run: Run) -> int:
        from modelaas.runtime import Runtime

        settings = dataclasses.replace(self.settings, warm=run.warm)
        runtime = Runtime(settings, [target.handle])  # the serving path: checks, fetches, answers alike
        try:
            with stdout_to_stderr(), _reported_here():
                answer = asyncio.run(_predict(runtime, target.name, dict(raw)))
            emit_answer(answer, run.output)
        finally:
            runtime.close()
        return 0

    # -------------------------------------------------------------------- train
    def train(self, target: Target, raw: Mapping[str, Any], run: Run) -> int:
        adapter = target.handle
        try:
            kwargs = adapter.params_for("train").validate(raw)
        except ValidationError as exc:
            raise for_options(exc) from None
        output_dir = Path(run.output_dir) if run.output_dir is not None else None
        ours = output_dir is None or not output_dir.exists()  # a folder made for this run: removed if left empty
        if output_dir is None:
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            output_dir = self.settings.make_data_dir() / "runs" / f"{target.name}-{stamp}"
        progress = _progress() if interactive() else None
        context = ConsoleContext(output_dir, progress)
        try:
            with stdout_to_stderr():
                if run.warm:
                    with spinner(f"Warming {target.name}..."):
                        adapter.warm()
                try:
                    if progress is not None:
                        with progress, logs_above(progress.console), _fd_output_above(progress.console):
                            result = adapter.train(kwargs, context.showing())
                    else:
                        result = adapter.train(kwargs, context)
                except ModelaasError:
                    raise
                except Exception as exc:
                    raise from_model_exception(exc, model=target.name, method="train") from exc
        finally:
            if ours and output_dir.is_dir() and not any(output_dir.iterdir()):
                output_dir.rmdir()
        if output_dir.exists() and any(output_dir.iterdir()):
            click.echo(f"Artefacts are in {output_dir}", err=True)
        emit_json(to_jsonable(result), run.output)
        return 0


async def _predict(runtime: Any, name: str, raw: dict[str, Any]) -> Any:
    if runtime.settings.warm:
        with spinner(f"Warming {name}..."):
            await runtime.warm()
    with spinner(f"Predicting with {name}..."):
        try:
            return await runtime.predict(name, raw)
        except ValidationError as exc:
            raise for_options(exc) from None


@contextlib.contextmanager
def _reported_here() -> Iterator[None]:
    """The runtime's log record of a model's failure is left out: the CLI's error report shows
    the same traceback (the model's frames only) with the summary last."""

    def keep(record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.levelno >= logging.ERROR)

    logger = logging.getLogger("modelaas.runtime")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


class ConsoleContext(TrainingContext):
    """A training context that shows progress on the terminal."""

    def __init__(self, output_dir: Path, progress: Any = None) -> None:
        super().__init__(output_dir)
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"Cannot create the output folder {self.output_dir}: {exc.strerror}.") from None
        self._progress = progress
        self._task: Any = None

    def showing(self) -> ConsoleContext:
        """This context, its progress shown on the bar (once the bar is up)."""
        if self._progress is not None and self._task is None:
            self._task = self._progress.add_task("training", total=1.0)
        return self

    def _on_report(self) -> None:
        if self._progress is None or self._task is None:
            return
        metrics = " ".join(f"{k}={_short(v)}" for k, v in self.metrics.items())
        self._progress.update(self._task, completed=self.progress or 0.0, description=metrics or "training")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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


@contextlib.contextmanager
def _fd_output_above(console: Any) -> Iterator[None]:
    """What model code writes to file descriptor 1 (subprocesses, C code) is printed by
    ``console``, above its progress bar, line by line, instead of onto the bar's line."""
    import threading

    read_end, write_end = os.pipe()
    saved = os.dup(1)
    os.dup2(write_end, 1)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:  # ends when every writer (ours, and subprocesses') has closed it
                console.print(line.decode(errors="replace").rstrip("\n"), markup=False, highlight=False)

    reader = threading.Thread(target=pump, name="fd-output", daemon=True)
    reader.start()
    try:
        yield
    finally:
        os.dup2(saved, 1)  # our end of the pipe closes: the pump ends once subprocesses' ends do
        os.close(saved)
        reader.join(timeout=2)  # a subprocess left running keeps its end; it is not waited for
