"""The native typed model interface: ``Model`` and ``Input``.

::

    from typing import Literal
    from modelaas import File, Input, Model, URLFile

    class Classifier(Model):
        metadata = {"summary": "Tells cats from dogs"}

        def warm(self) -> None:
            self.net = load_checkpoint()

        def predict(
            self,
            image: File = Input(description="A photo", media_types=("image/*",)),
            top_k: int = Input(3, ge=1, le=10),
            reference: URLFile | None = None,  # sent as a URL, fetched by the server
            mode: Literal["fast", "exact"] = "fast",
        ) -> Prediction:  # a pydantic model: it becomes the response schema
            ...
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from modelaas.model.params import MISSING


@dataclass(frozen=True)
class InputSpec:
    """What :func:`Input` records about one argument."""

    default: Any = MISSING
    description: str = ""
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    lt: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    choices: Sequence[Any] | None = None
    alias: str | None = None
    """The name clients send, when it cannot be a Python identifier (``demo-str``)."""
    media_types: Sequence[str] = ()
    """For files: the content types expected (``("image/*",)``); used by docs and the UI, and
    enforced for ``URLFile`` arguments (the server refuses to fetch other content types)."""
    shape: Sequence[int] | None = None
    """For ``NDArray`` arguments: the tensor's shape, ``-1`` for any size along an axis."""


@dataclass(frozen=True)
class OutputSpec:
    """What :func:`Output` records about a tensor a typed model returns."""

    name: str = "output0"
    shape: Sequence[int] | None = None
    description: str = ""


def Output(name: str = "output0", *, shape: Sequence[int] | None = None, description: str = "") -> Any:
    """Name and shape the tensor a typed model's ``predict`` returns (Open Inference Protocol output).

    ``-> Annotated[NDArray[np.int64], Output("label", shape=(-1,))]``; a bare ``-> NDArray[...]``
    is the output ``output0`` of shape ``(-1,)``.
    """
    return OutputSpec(name=name, shape=tuple(shape) if shape is not None else None, description=description)


def Input(
    default: Any = MISSING,
    *,
    description: str = "",
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    choices: Sequence[Any] | None = None,
    alias: str | None = None,
    media_types: Sequence[str] = (),
    shape: Sequence[int] | None = None,
) -> Any:
    """Describe one argument of a typed model's ``predict`` or ``train``.

    Use it as the parameter's default (``x: int = Input(3, ge=0)``) or inside
    ``Annotated[int, Input(ge=0)]``. Without a default the argument is required.
    ``alias`` is the name clients send when it cannot be a Python identifier
    (``demo-str``); ``media_types`` tells docs and the UI what a file should be (for a
    ``URLFile`` the server also refuses a fetched file of another type); ``shape`` is the
    shape of an ``NDArray[...]`` argument (``(-1, 4)``: any number of rows of 4).
    The return type is ``Any`` so that type checkers accept it as any default.
    """
    return InputSpec(
        default=default,
        description=description,
        ge=ge,
        le=le,
        gt=gt,
        lt=lt,
        min_length=min_length,
        max_length=max_length,
        choices=choices,
        alias=alias,
        media_types=tuple(media_types),
        shape=tuple(shape) if shape is not None else None,
    )


class Model:
    """Base class for models written for modelaas.

    Define any of ``predict(self, ...)`` and ``train(self, ...)`` with annotated
    parameters; optionally ``warm(self)`` (called once per serving process before it
    takes requests) and a ``metadata`` dict merged into the model's listing entry.

    ``artefacts``: when a registered version of the model is active, the folder of its files
    (what its training wrote to ``ctx.output_dir``), set before ``warm()``; None otherwise.
    """

    metadata: ClassVar[dict[str, Any]] = {}
    artefacts: Path | None = None

    def warm(self) -> None:
        """Load weights and other expensive state. Called once per process."""


class TrainingContext:
    """Handed to a typed model's ``train`` when a parameter is annotated with this class.

    ``report(progress=None, **metrics)`` records progress (0..1) and the latest metrics;
    ``cancelled`` turns true when the job is asked to stop (return early, cooperatively);
    ``output_dir`` is where artefacts go; ``logger`` writes to the job's log.
    """

    __modelaas_context__ = True

    def __init__(self, output_dir: str | Path, logger: logging.Logger | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.logger = logger or logging.getLogger("modelaas.training")
        self.progress: float | None = None
        self.metrics: dict[str, Any] = {}
        self._cancel = threading.Event()

    def report(self, progress: float | None = None, **metrics: Any) -> None:
        if progress is not None:
            self.progress = max(0.0, min(1.0, float(progress)))
        if metrics:
            self.metrics = {**self.metrics, **metrics}
        self._on_report()

    def _on_report(self) -> None:
        """Hook for job backends that publish reports elsewhere."""

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()
