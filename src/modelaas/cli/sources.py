"""Where ``modelaas predict|train`` do their work: a model loaded here, or a server.

:class:`LocalModels` (:mod:`modelaas.cli.local`) and :class:`RemoteModels`
(:mod:`modelaas.cli.remote`, with ``--remote URL``) are two implementations of one
interface, :class:`ModelSource`; the commands pick one from their options once
(:func:`modelaas.cli.modelcmd.source_for`) and never ask again which it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from modelaas.errors import ValidationError
from modelaas.model.params import Param


@dataclass
class Target:
    """One model's method (``predict`` or ``train``) and its arguments, as the source describes them."""

    name: str
    method: str
    params: Sequence[Param]
    handle: Any = field(default=None, repr=False)
    """What the source needs to run it (the loaded model, for a local source)."""


@dataclass(frozen=True)
class Run:
    """What the user asked on the command line besides the model's own arguments."""

    output: str | None = None
    warm: bool = True
    output_dir: Path | None = None
    detach: bool = False


class ModelSource(Protocol):
    def names(self) -> list[str]:
        """The models there are (without importing them, locally)."""

    def resolve(self, name: str, method: str) -> Target:
        """The model ``name`` and the arguments of its ``method``; ModelNotFound / NotImplementedByModel."""

    def predict(self, target: Target, raw: Mapping[str, Any], run: Run) -> int:
        """Predict with ``raw`` argument values; the answer goes to stdout or ``run.output``; an exit code."""

    def train(self, target: Target, raw: Mapping[str, Any], run: Run) -> int:
        """Train with ``raw`` argument values, following it to its end; an exit code."""


def for_options(exc: ValidationError) -> ValidationError:
    """A validation error that names options (``--demo-int``) rather than fields."""
    lines = [f"--{name}: {' '.join(_flat(messages))}" for name, messages in exc.errors.items()]
    error = ValidationError(exc.errors)
    error.message = "Invalid arguments:\n  " + "\n  ".join(lines)
    return error


def _flat(messages: Any) -> list[str]:
    if isinstance(messages, dict):
        return [f"item {k}: {' '.join(_flat(v))}" for k, v in messages.items()]
    if isinstance(messages, list):
        return [str(m) for m in messages]
    return [str(messages)]
