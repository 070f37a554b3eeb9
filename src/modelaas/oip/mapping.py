"""Every model as tensors: its arguments as input tensors, its answer as output tensors.

* A typed model's ``NDArray`` arguments are tensors of their declared datatype and shape;
  its ``NDArray`` return is the output tensor(s) it declares (``Output``).
* Every other argument (DEEPaaS v1/v2, typed scalars) is a tensor too: text, files and
  JSON objects are ``BYTES`` of shape ``[1]`` (``[-1]`` for lists), integers ``INT64``,
  numbers ``FP64``, booleans ``BOOL`` (shape ``[1]``, or ``[-1]`` for lists). Clients may
  send any numeric datatype (or ``BYTES`` text) for a number: the model's own validation
  decides, as on the DEEPaaS route.
* Such a model answers one ``BYTES`` output, ``output``, shape ``[1]``: its DEEPaaS answer
  (JSON text, or the raw bytes of a media answer), with ``content_type`` in its parameters.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelaas.errors import ValidationError
from modelaas.model.adapters import ModelAdapter
from modelaas.model.files import File, safe_suffix
from modelaas.model.params import Kind, Param, ParamSet
from modelaas.model.tensors import DATATYPES, TensorSpec
from modelaas.oip.codec import Tensor, TensorError

ANSWER_OUTPUT = "output"
"""The name of the one output of models that do not return tensors."""

_SCALAR_DATATYPES = {Kind.INTEGER: "INT64", Kind.NUMBER: "FP64", Kind.BOOLEAN: "BOOL"}


@dataclass(frozen=True)
class TensorMeta:
    """An input or output as model metadata shows it."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    param: Param | None = None
    parameters: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}
        if self.parameters:
            out["parameters"] = self.parameters
        return out


def inputs_of(adapter: ModelAdapter) -> list[TensorMeta]:
    """The model's inputs (none for a model without predict: its infer answers 501)."""
    if adapter.predict_params is None:
        return []
    return [_input(p) for p in adapter.predict_params]


def _input(p: Param) -> TensorMeta:
    params: dict[str, Any] = {"required": p.required}
    if p.description:
        params["description"] = p.description
    spec = p.tensor
    if isinstance(spec, TensorSpec):
        return TensorMeta(p.wire_name, spec.datatype, spec.shape, p, params)
    kind = p.item if p.is_array else p.kind
    datatype = _SCALAR_DATATYPES.get(kind or Kind.ANY, "BYTES")
    if p.is_file:
        params["content"] = "file"
    elif kind in (Kind.OBJECT, Kind.ANY):
        params["content"] = "json"
    return TensorMeta(p.wire_name, datatype, (-1,) if p.is_array else (1,), p, params)


def outputs_of(adapter: ModelAdapter) -> list[TensorMeta]:
    if adapter.predict_params is None:
        return []
    if adapter.output_tensors:
        return [TensorMeta(name, spec.datatype, spec.shape) for name, spec in adapter.output_tensors]
    media = adapter.media_types[0] if adapter.media_types else "application/json"
    return [TensorMeta(ANSWER_OUTPUT, "BYTES", (1,), parameters={"content_type": media})]


# --------------------------------------------------------------------- inputs
class Uploads:
    """Files written for ``BYTES`` inputs of file arguments; deleted by :meth:`cleanup`."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.dir: str | None = None

    def write(self, field: str, content: bytes, parameters: dict[str, Any]) -> File:
        if self.dir is None:
            root = self.root or Path(tempfile.gettempdir())
            root.mkdir(parents=True, exist_ok=True)
            self.dir = tempfile.mkdtemp(dir=root, prefix="oip-")
        given = str(parameters.get("filename") or field)
        fd, path = tempfile.mkstemp(dir=self.dir, suffix=safe_suffix(given))
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        content_type = str(parameters.get("content_type") or "application/octet-stream")
        return File(name=field, filename=path, content_type=content_type, original_filename=given)

    def cleanup(self) -> None:
        if self.dir is not None:
            import shutil

            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def raw_arguments(params: ParamSet, inputs: list[Tensor], uploads: Uploads) -> dict[str, Any]:
    """The raw argument values (by wire name) the input tensors stand for; 400 for tensors that do not fit."""
    by_name: dict[str, Tensor] = {}
    for tensor in inputs:
        if tensor.name in by_name:
            raise TensorError(f"Input {tensor.name!r} is given twice.")
        by_name[tensor.name] = tensor
    unknown = [n for n in by_name if params.get(n) is None]
    if unknown:
        takes = ", ".join(repr(p.wire_name) for p in params) or "no inputs"
        raise TensorError(f"Input {unknown[0]!r} is not an input of this model; it takes {takes}.")
    raw: dict[str, Any] = {}
    for name, tensor in by_name.items():
        param = params.get(name)
        assert param is not None
        raw[name] = _value(param, tensor, uploads)
    return raw


def _value(p: Param, t: Tensor, uploads: Uploads) -> Any:
    label = f"Input {t.name!r}"
    spec = p.tensor
    if isinstance(spec, TensorSpec):
        if t.datatype != spec.datatype:
            raise TensorError(f"{label} has datatype {t.datatype}; the model takes {spec.datatype}.")
        problem = spec.check_shape(t.shape)
        if problem:
            raise TensorError(f"{label} {problem}.")
        return t.array()
    values = t.values()
    if p.is_file:
        if t.datatype != "BYTES":
            raise TensorError(f"{label} is a file: send it as a BYTES tensor, not {t.datatype}.")
        files = [uploads.write(t.name, v, t.parameters) for v in values]
        return files if p.is_array else _one(files, label)
    if t.datatype == "BYTES":
        try:
            texts: list[Any] = [v.decode("utf-8") for v in values]
        except UnicodeDecodeError:
            raise TensorError(f"{label}: BYTES elements of a non-file argument must be UTF-8 text.") from None
        kind = p.item if p.is_array else p.kind
        if kind in (Kind.OBJECT, Kind.ANY, Kind.ARRAY):
            texts = [_maybe_json(v) for v in texts]
        values = texts
    elif DATATYPES[t.datatype].kind == "float":
        values = [float(v) for v in values]
    return values if p.is_array else _one(values, label)


def _one(values: list[Any], label: str) -> Any:
    if len(values) != 1:
        raise TensorError(f"{label} has {len(values)} elements; this argument takes one value (shape [1]).")
    return values[0]


def _maybe_json(text: str) -> Any:
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def validation_message(exc: ValidationError) -> str:
    """A 422's field -> messages map as one line naming each input."""
    parts = []
    for name, messages in exc.errors.items():
        text = "; ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
        parts.append(f"Input {name!r}: {text}" if name != "_schema" else text)
    return " ".join(parts) or exc.message
