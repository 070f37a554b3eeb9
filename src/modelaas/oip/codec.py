"""Tensors on the wire: JSON ``data`` (nested or flat, row-major) and the binary tensor data extension.

Shared by REST and gRPC. Decoding checks everything a client can get wrong (datatype,
shape, element count and types, binary lengths) and raises :class:`TensorError` (400)
naming the tensor. numpy is used when a caller asks for an array (:meth:`Tensor.array`);
:meth:`Tensor.values` needs only the standard library.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelaas.errors import BadRequest
from modelaas.model.tensors import DATATYPES

_INT_RANGES = {
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
}


class TensorError(BadRequest):
    """A tensor the client sent cannot be read (400, OIP-shaped on OIP routes)."""


@dataclass
class Tensor:
    """One input or output tensor: flat ``data`` (JSON) or ``raw`` bytes (binary), row-major."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: list[Any] | None = None
    raw: bytes | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    def values(self) -> list[Any]:
        """The elements as Python values (``bytes`` for BYTES)."""
        if self.raw is None:
            data = self.data or []
            if self.datatype == "BYTES":
                return [v.encode("utf-8") if isinstance(v, str) else v for v in data]
            return list(data)
        if self.datatype == "BYTES":
            return split_bytes(self.raw)
        if self.datatype == "BF16":
            return [struct.unpack("<f", b"\0\0" + self.raw[i : i + 2])[0] for i in range(0, len(self.raw), 2)]
        return list(struct.unpack(f"<{self.count}{DATATYPES[self.datatype].code}", self.raw))

    def array(self) -> Any:
        """The tensor as a numpy array of its datatype and shape (BYTES: an object array of bytes)."""
        import numpy as np

        dt = DATATYPES[self.datatype]
        if self.datatype == "BYTES":
            flat = np.empty(self.count, dtype=object)
            flat[:] = self.values()
            return flat.reshape(self.shape)
        if self.raw is not None:
            if self.datatype == "BF16":
                widened = np.frombuffer(self.raw, dtype="<u2").astype(np.uint32) << 16
                return widened.view(np.float32).reshape(self.shape)
            return np.frombuffer(self.raw, dtype=np.dtype(dt.numpy).newbyteorder("<")).reshape(self.shape)
        return np.asarray(self.data, dtype=dt.numpy).reshape(self.shape)


# ------------------------------------------------------------------- decoding
def read_tensor(obj: Any, *, what: str, binary: memoryview | None, offset: int) -> tuple[Tensor, int]:
    """The tensor described by JSON ``obj``; binary data, if it says it has some, from ``binary[offset:]``.

    Returns the tensor and the offset after its binary data.
    """
    if not isinstance(obj, dict):
        raise TensorError(f"Each {what} is an object with name, datatype, shape and data.")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise TensorError(f"An {what} has no name.")
    datatype = obj.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        known = ", ".join(DATATYPES)
        raise TensorError(f"{what.capitalize()} {name!r}: datatype {datatype!r} is not one of {known}.")
    shape = read_shape(obj.get("shape"), f"{what.capitalize()} {name!r}")
    params = obj.get("parameters") or {}
    if not isinstance(params, dict):
        raise TensorError(f"{what.capitalize()} {name!r}: parameters must be an object.")
    if any(str(k).startswith("shared_memory") for k in params):
        raise TensorError(f"{what.capitalize()} {name!r}: shared memory is not supported; send the data.")
    tensor = Tensor(name, datatype, shape, parameters=params)
    size = params.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise TensorError(f"{what.capitalize()} {name!r}: binary_data_size must be a non-negative integer.")
        if "data" in obj:
            raise TensorError(f"{what.capitalize()} {name!r}: give data or binary_data_size, not both.")
        available = 0 if binary is None else len(binary) - offset
        if size > available:
            raise TensorError(
                f"{what.capitalize()} {name!r}: binary_data_size is {size} bytes, but only {available} "
                "bytes of binary data remain after the inference header (Inference-Header-Content-Length)."
            )
        assert binary is not None or size == 0
        tensor.raw = bytes(binary[offset : offset + size]) if binary is not None else b""
        check_raw(tensor, f"{what.capitalize()} {name!r}")
        return tensor, offset + size
    if "data" not in obj:
        raise TensorError(f"{what.capitalize()} {name!r} has no data (nor binary_data_size).")
    tensor.data = read_data(obj["data"], tensor, f"{what.capitalize()} {name!r}")
    return tensor, offset


def read_shape(shape: Any, label: str) -> tuple[int, ...]:
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise TensorError(f"{label}: shape must be a list of integers, not {shape!r}.")
    if any(d < 0 for d in shape):
        raise TensorError(f"{label}: shape {shape} has a negative size.")
    return tuple(shape)


def read_data(data: Any, tensor: Tensor, label: str) -> list[Any]:
    """The flat elements of JSON ``data`` (nested or flat), checked against datatype and shape."""
    flat = flatten(data) if isinstance(data, list) else [data]
    if flat is None:
        raise TensorError(f"{label}: data must be a list of values (nested lists for rows).")
    if len(flat) != tensor.count:
        raise TensorError(
            f"{label}: shape {list(tensor.shape)} needs {tensor.count} elements, but data has {len(flat)}."
        )
    kind = DATATYPES[tensor.datatype].kind
    if tensor.datatype == "BF16":
        raise TensorError(f"{label}: BF16 tensors are sent as binary data (the binary tensor data extension).")
    bad = next((v for v in flat if not _fits(v, kind)), _NONE)
    if bad is not _NONE:
        raise TensorError(f"{label}: {bad!r} is not a {tensor.datatype} value.")
    bounds = _INT_RANGES.get(tensor.datatype)
    if bounds is not None:
        low, high = bounds
        out = next((v for v in flat if not low <= v <= high), None)
        if out is not None:
            raise TensorError(f"{label}: {out} is out of the range of {tensor.datatype}.")
    return flat


_NONE: Any = object()


def _fits(value: Any, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def flatten(data: list[Any]) -> list[Any] | None:
    """Nested lists, row-major, as one list (None if a dict hides in them); no recursion."""
    if not any(isinstance(v, (list, dict)) for v in data):
        return data
    out: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            if isinstance(value, dict):
                return None
            out.append(value)
        else:
            stack.pop()
    return out


def check_raw(tensor: Tensor, label: str) -> None:
    """That binary data holds exactly the elements of the tensor's shape."""
    assert tensor.raw is not None
    size = DATATYPES[tensor.datatype].size
    if tensor.datatype == "BYTES":
        try:
            n = len(split_bytes(tensor.raw))
        except ValueError as exc:
            raise TensorError(f"{label}: {exc}") from None
        if n != tensor.count:
            raise TensorError(
                f"{label}: shape {list(tensor.shape)} needs {tensor.count} elements, but the binary data has {n}."
            )
    elif len(tensor.raw) != tensor.count * size:
        raise TensorError(
            f"{label}: shape {list(tensor.shape)} of {tensor.datatype} needs {tensor.count * size} bytes, "
            f"but binary_data_size is {len(tensor.raw)}."
        )


def split_bytes(raw: bytes) -> list[bytes]:
    """BYTES elements of binary data: each a 4-byte little-endian length, then that many bytes."""
    out: list[bytes] = []
    i, n = 0, len(raw)
    while i < n:
        if i + 4 > n:
            raise ValueError("BYTES binary data ends inside an element's 4-byte length.")
        (length,) = struct.unpack_from("<I", raw, i)
        i += 4
        if i + length > n:
            raise ValueError(f"a BYTES element says it has {length} bytes, but only {n - i} remain.")
        out.append(raw[i : i + length])
        i += length
    return out


def join_bytes(values: Sequence[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


# ------------------------------------------------------------------- encoding
def output_json(tensor: Tensor, *, binary: bool) -> tuple[dict[str, Any], bytes | None]:
    """An output tensor's JSON description and, for binary, its bytes (after the header)."""
    out: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
    params = dict(tensor.parameters)
    if binary:
        raw = to_raw(tensor)
        params["binary_data_size"] = len(raw)
        out["parameters"] = params
        return out, raw
    if params:
        out["parameters"] = params
    if tensor.datatype == "BYTES":
        try:
            out["data"] = [v.decode("utf-8") if isinstance(v, bytes) else v for v in tensor.values()]
        except UnicodeDecodeError:
            raise TensorError(
                f"Output {tensor.name!r} holds bytes that are not UTF-8 text, which JSON cannot carry: "
                "ask for it as binary data (parameters binary_data: true)."
            ) from None
    elif tensor.datatype == "BF16":
        raise TensorError(f"Output {tensor.name!r} is BF16, sent as binary data only: ask for binary_data: true.")
    else:
        out["data"] = tensor.values()
    return out, None


def to_raw(tensor: Tensor) -> bytes:
    if tensor.raw is not None:
        return tensor.raw
    values = tensor.values()
    if tensor.datatype == "BYTES":
        return join_bytes(values)
    if tensor.datatype == "BF16":
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    return struct.pack(f"<{len(values)}{DATATYPES[tensor.datatype].code}", *values)


def tensor_from_array(name: str, array: Any, datatype: str, parameters: dict[str, Any] | None = None) -> Tensor:
    """An output tensor from a numpy array already of ``datatype``'s dtype (raw little-endian bytes)."""
    import numpy as np

    shape = tuple(int(d) for d in array.shape)
    if datatype == "BYTES":
        flat = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.ravel().tolist()]
        return Tensor(name, datatype, shape, raw=join_bytes(flat), parameters=parameters or {})
    if datatype == "BF16":
        bits = np.ascontiguousarray(array, dtype="<f4").view("<u4") >> 16
        return Tensor(name, datatype, shape, raw=bits.astype("<u2").tobytes(), parameters=parameters or {})
    dtype = np.dtype(DATATYPES[datatype].numpy).newbyteorder("<")
    return Tensor(
        name, datatype, shape, raw=np.ascontiguousarray(array, dtype=dtype).tobytes(), parameters=parameters or {}
    )
