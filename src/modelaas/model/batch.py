"""Adaptive batching, the model's side: ``@batched`` and ``Batch[...]``.

A typed model opts in by decorating ``predict``; each argument is then annotated
``Batch[T]``, where ``T`` is what one request sends (it is what validation, the API
documents, the CLI and the UI describe), and the method receives a ``list`` of them, one
per request, in the same order for every argument. It returns a list of the same length::

    from modelaas import Batch, Input, Model, batched

    class Sentiment(Model):
        @batched(max_size=32, max_wait_ms=5)
        def predict(self, text: Batch[str] = Input(description="A sentence")) -> list[Score]:
            return [Score(...) for t in text]

The server collects concurrent requests into one call (:mod:`modelaas.runtime.batching`);
``max_size`` bounds a batch and ``max_wait_ms`` the time a request may wait for others.
Settings (``--batch``) can change both per model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, get_args, get_origin

from modelaas.errors import OutputInvalid, ValidationError
from modelaas.model.params import ParamSet

T = TypeVar("T")

MAX_SIZE_LIMIT = 4096
"""The largest batch a model may ask for: bounds the memory one call can tie up."""


class _BatchMarker:
    """Marks an argument annotation as one item per request of a batch."""

    def __repr__(self) -> str:
        return "Batch"


BATCH_MARKER = _BatchMarker()

Batch = Annotated[list[T], BATCH_MARKER]
"""``Batch[str]``: a list with one ``str`` per request (type checkers see ``list[str]``)."""


@dataclass(frozen=True)
class BatchSpec:
    """How a model's predict batches: at most ``max_size`` requests, waiting at most ``max_wait`` s."""

    max_size: int = 32
    max_wait: float = 0.005
    retry_singly: bool = False
    """When a batch call raises, call the model once per request of it, so that one bad
    request fails alone (each request is then called twice in all: the batch, and alone)."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_size, int) or isinstance(self.max_size, bool) or self.max_size < 1:
            raise ValueError(f"max_size must be an integer of at least 1, not {self.max_size!r}")
        if self.max_size > MAX_SIZE_LIMIT:
            raise ValueError(f"max_size must be at most {MAX_SIZE_LIMIT}, not {self.max_size!r}")
        if not 0 <= self.max_wait <= 10:
            raise ValueError(f"max_wait_ms must be between 0 and 10000, not {self.max_wait * 1000:g}")


def batched(
    max_size: int = 32, max_wait_ms: float = 5.0, *, retry_singly: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let modelaas call the decorated ``predict`` with up to ``max_size`` requests at once.

    A request waits at most ``max_wait_ms`` for others to join it, and only when others
    are arriving: alone, it is called at once. With ``retry_singly``, a batch whose call
    raises is called again one request at a time, so that only the requests that fail
    on their own get an error.
    """
    spec = BatchSpec(max_size=max_size, max_wait=max_wait_ms / 1000.0, retry_singly=retry_singly)

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        func.__modelaas_batch__ = spec  # type: ignore[attr-defined]
        return func

    return mark


def batch_spec(func: Any) -> BatchSpec | None:
    """The :class:`BatchSpec` a method was decorated with, if any."""
    spec = getattr(func, "__modelaas_batch__", None)
    return spec if isinstance(spec, BatchSpec) else None


def batch_item(annotation: Any) -> Any | None:
    """``T`` for an annotation ``Batch[T]`` (with or without more ``Annotated`` metadata); else None."""
    if get_origin(annotation) is not Annotated:
        return None
    base, *meta = get_args(annotation)
    if not any(m is BATCH_MARKER for m in meta):
        return None
    others = tuple(m for m in meta if m is not BATCH_MARKER)
    args = get_args(base)
    item = args[0] if get_origin(base) is list and args else Any
    for extra in others:  # nested Annotated flattens: Annotated[T, a, b]
        item = Annotated[item, extra]
    return item


class BatchAssembly:
    """How the requests of a batch become one call of a ``@batched`` predict, and its answer theirs.

    Arguments: one list per argument, in request order; stacked tensors (``NDArray`` with a
    batch axis first): one array, the requests' rows one after the other. Answers: a list
    with one per request, or, for a model that returns a tensor, that tensor's rows split
    back by request.
    """

    def __init__(self, model: str, params: ParamSet, *, tensor_output: bool) -> None:
        self.model = model
        self.names = [p.name for p in params]
        self.stacked = [(p.name, p.wire_name) for p in params if p.extra.get("stacked")]
        self.tensor_output = tensor_output

    def weight(self, kwargs: dict[str, Any]) -> int:
        """What one request counts for against ``max_size``: the rows of its stacked tensors, else 1.

        Raises :class:`ValidationError` when its stacked tensors have different numbers of rows.
        """
        if not self.stacked:
            return 1
        counts = {wire: len(kwargs[name]) for name, wire in self.stacked}
        if len(set(counts.values())) > 1:
            shown = ", ".join(f"{wire}: {n}" for wire, n in counts.items())
            raise ValidationError({"_schema": [f"Batched tensors must have as many rows each ({shown})."]})
        return max(1, next(iter(counts.values())))

    def columns(self, items: list[dict[str, Any]]) -> tuple[dict[str, Any], list[int] | None]:
        """The call's arguments, and the rows of each request (None without stacked tensors)."""
        columns: dict[str, Any] = {name: [item[name] for item in items] for name in self.names}
        rows: list[int] | None = None
        if self.stacked:
            import numpy as np

            for name, _ in self.stacked:
                rows = [len(v) for v in columns[name]]
                columns[name] = np.concatenate(columns[name], axis=0)
        return columns, rows

    def answers(self, outputs: Any, size: int, rows: list[int] | None = None) -> list[Any]:
        """The call's answer, checked, as one answer per request (:class:`OutputInvalid` if it cannot be)."""
        failed = f"Model {self.model!r} failed in predict"
        if self.tensor_output and hasattr(outputs, "shape"):
            rows = rows or [1] * size
            total = sum(rows)
            if not outputs.shape or outputs.shape[0] != total:
                got = outputs.shape[0] if outputs.shape else "no"
                plural = "s" if total != 1 else ""
                raise OutputInvalid(f"{failed}: it returned a tensor of {got} rows for a batch of {total} row{plural}.")
            import numpy as np

            return list(np.split(outputs, np.cumsum(rows)[:-1]))
        if not isinstance(outputs, (list, tuple)):
            raise OutputInvalid(
                f"{failed}: a @batched predict must return a list with one answer per request, "
                f"not {type(outputs).__name__}."
            )
        if len(outputs) != size:
            raise OutputInvalid(
                f"{failed}: it returned {len(outputs)} answers for a batch of {size} request{'s' if size != 1 else ''}."
            )
        return list(outputs)
