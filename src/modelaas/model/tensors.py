"""Tensors: the datatypes of the Open Inference Protocol and typed models' numpy arguments.

A typed model declares a tensor argument with a numpy annotation and a shape::

    def predict(self, x: NDArray[np.float32] = Input(shape=(-1, 4))) -> NDArray[np.int64]: ...

The argument becomes a :class:`~modelaas.model.params.Param` of kind ``TENSOR`` whose
``extra["tensor"]`` is a :class:`TensorSpec`; its validator (:func:`to_array`) turns nested
JSON lists or arrays into an array of the declared dtype and shape. numpy is imported only
here and only when a model declares tensors: the rest of modelaas runs without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelaas.errors import ModelLoadError


@dataclass(frozen=True)
class Datatype:
    """One OIP datatype: its name, numpy dtype name, ``struct`` code and element size (0: variable)."""

    name: str
    numpy: str
    code: str
    size: int
    kind: str
    """``bool``, ``int``, ``float`` or ``bytes``: what a JSON element must be."""


DATATYPES: dict[str, Datatype] = {
    d.name: d
    for d in (
        Datatype("BOOL", "bool", "?", 1, "bool"),
        Datatype("UINT8", "uint8", "B", 1, "int"),
        Datatype("UINT16", "uint16", "H", 2, "int"),
        Datatype("UINT32", "uint32", "I", 4, "int"),
        Datatype("UINT64", "uint64", "Q", 8, "int"),
        Datatype("INT8", "int8", "b", 1, "int"),
        Datatype("INT16", "int16", "h", 2, "int"),
        Datatype("INT32", "int32", "i", 4, "int"),
        Datatype("INT64", "int64", "q", 8, "int"),
        Datatype("FP16", "float16", "e", 2, "float"),
        Datatype("FP32", "float32", "f", 4, "float"),
        Datatype("FP64", "float64", "d", 8, "float"),
        Datatype("BF16", "float32", "", 2, "float"),  # no numpy dtype: widened to float32 on the way in
        Datatype("BYTES", "object", "", 0, "bytes"),
    )
}
_BY_NUMPY = {d.numpy: d.name for d in DATATYPES.values() if d.name != "BF16"}


def datatype_of_dtype(dtype: Any) -> str:
    """The OIP datatype of a numpy dtype (strings and bytes are ``BYTES``)."""
    kind = getattr(dtype, "kind", "")
    if kind in ("U", "S", "O"):
        return "BYTES"
    name = _BY_NUMPY.get(str(getattr(dtype, "name", dtype)))
    if name is None:
        raise ValueError(f"numpy dtype {dtype} has no Open Inference Protocol datatype")
    return name


@dataclass(frozen=True)
class TensorSpec:
    """A declared tensor: OIP datatype and shape (``-1``: any size along that axis)."""

    datatype: str
    shape: tuple[int, ...]

    def check_shape(self, shape: Sequence[int]) -> str | None:
        """Why ``shape`` does not fit the declared one (None: it does)."""
        if len(shape) != len(self.shape) or any(d != -1 and d != s for d, s in zip(self.shape, shape, strict=True)):
            return f"has shape {list(shape)}; expected {list(self.shape)} (-1: any size)"
        return None

    def to_json(self) -> dict[str, Any]:
        return {"datatype": self.datatype, "shape": list(self.shape)}


def is_ndarray_annotation(annotation: Any) -> bool:
    """Whether ``annotation`` is ``numpy.ndarray`` or ``numpy.typing.NDArray[...]`` (numpy not imported)."""
    from typing import get_origin

    target = get_origin(annotation) or annotation
    return getattr(target, "__module__", "") == "numpy" and getattr(target, "__name__", "") == "ndarray"


def spec_from_annotation(annotation: Any, shape: Sequence[int] | None, *, where: str) -> TensorSpec:
    """The :class:`TensorSpec` of ``NDArray[np.float32]`` (+ ``shape``); ``where`` names it in errors."""
    from typing import get_args

    import numpy as np

    dtype: Any = None
    args = get_args(annotation)
    if len(args) == 2:
        inner = get_args(args[1])
        if inner and inner[0] is not Any:
            dtype = inner[0]
    if dtype is None:
        raise ModelLoadError(f"{where}: say the element type of the array, e.g. NDArray[np.float32].")
    try:
        datatype = datatype_of_dtype(np.dtype(dtype))
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{where}: {exc}") from None
    if shape is None:
        raise ModelLoadError(f"{where}: give the tensor's shape, e.g. Input(shape=(-1, 4)) (-1: any size).")
    dims = tuple(int(d) for d in shape)
    if not dims or any(d < -1 or d == 0 for d in dims):
        raise ModelLoadError(f"{where}: a shape is one or more sizes, each positive or -1 (any), not {shape!r}.")
    return TensorSpec(datatype, dims)


def to_array(value: Any, spec: TensorSpec) -> Any:
    """``value`` (nested lists or an array) as a numpy array of ``spec``; ValueError says why not."""
    import numpy as np

    dt = DATATYPES[spec.datatype]
    if isinstance(value, np.ndarray):
        array = value
    else:
        if value is None or isinstance(value, (str, bytes, dict)):
            raise ValueError(f"expected an array of shape {list(spec.shape)}")
        try:
            array = np.asarray(value) if dt.kind != "bytes" else np.asarray(value, dtype=object)
        except (ValueError, TypeError):
            raise ValueError("is not a regular array (rows of different lengths?)") from None
    if dt.kind != "bytes" and not _fits(array.dtype.kind, dt.kind):
        raise ValueError(f"holds {_what(array.dtype.kind)}; expected {spec.datatype} values")
    problem = spec.check_shape(array.shape)
    if problem:
        raise ValueError(problem)
    if dt.kind == "bytes":
        return array.astype(object)
    return array.astype(dt.numpy, copy=False)


def _fits(have: str, want: str) -> bool:
    if want == "bool":
        return have == "b"
    if want == "int":
        return have in "iu"
    return have in "iuf"  # float


def _what(kind: str) -> str:
    return {"U": "text", "S": "bytes", "O": "mixed values", "b": "booleans", "f": "non-integer numbers"}.get(
        kind, "values of another type"
    )


def element_count(shape: Sequence[int]) -> int:
    return math.prod(shape)
