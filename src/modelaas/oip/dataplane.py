"""The Open Inference Protocol over the runtime: health, metadata and infer, for REST and gRPC alike.

Transports parse their wire format into an :class:`InferRequest` of :class:`Tensor`, call
:class:`DataPlane`, and render what it returns; validation, admission, limits and timeouts
are the :class:`~modelaas.runtime.Runtime`'s, as on the DEEPaaS routes.

Versions: a model serves the version its metadata declares (``version`` or ``Version``) and,
when one is active, its registered version number (docs/versions.md); a request naming
another version (or any version, for a model that declares none) is 404.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelaas.errors import ModelaasError, NotFound, OutputInvalid, ValidationError
from modelaas.model.adapters import ModelAdapter
from modelaas.model.jsonable import to_jsonable
from modelaas.model.tensors import DATATYPES, datatype_of_dtype
from modelaas.oip.codec import Tensor, TensorError, read_tensor, tensor_from_array
from modelaas.oip.mapping import ANSWER_OUTPUT, Uploads, inputs_of, outputs_of, raw_arguments, validation_message
from modelaas.runtime.core import Runtime

EXTENSIONS = ["binary_tensor_data"]


@dataclass
class RequestedOutput:
    name: str
    binary: bool | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferRequest:
    inputs: list[Tensor]
    id: str | None = None
    outputs: list[RequestedOutput] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def binary_output(self) -> bool:
        return self.parameters.get("binary_data_output") is True


@dataclass
class InferResponse:
    model_name: str
    model_version: str | None
    id: str | None
    outputs: list[tuple[Tensor, bool]]
    """Each output and whether it goes as binary data."""


def parse_infer_request(header: Any, binary: memoryview | None) -> InferRequest:
    """The request of a JSON inference header and the binary data after it (REST)."""
    if not isinstance(header, dict):
        raise TensorError("The inference request is a JSON object with 'inputs'.")
    inputs_json = header.get("inputs")
    if not isinstance(inputs_json, list):
        raise TensorError("The inference request needs 'inputs', a list of tensors.")
    offset = 0
    inputs = []
    for obj in inputs_json:
        tensor, offset = read_tensor(obj, what="input", binary=binary, offset=offset)
        inputs.append(tensor)
    extra = 0 if binary is None else len(binary) - offset
    if extra:
        raise TensorError(
            f"{extra} bytes of binary data follow the inference header but no input claims them "
            "(binary_data_size of each input; Inference-Header-Content-Length for the header)."
        )
    rid = header.get("id")
    if rid is not None and not isinstance(rid, str):
        raise TensorError("The request 'id' must be a string.")
    params = header.get("parameters") or {}
    if not isinstance(params, dict):
        raise TensorError("The request 'parameters' must be an object.")
    outputs = None
    if header.get("outputs") is not None:
        if not isinstance(header["outputs"], list):
            raise TensorError("'outputs' must be a list of {'name': ...}.")
        outputs = []
        for obj in header["outputs"]:
            if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
                raise TensorError("Each requested output is an object with a 'name'.")
            oparams = obj.get("parameters") or {}
            if not isinstance(oparams, dict):
                raise TensorError(f"Output {obj['name']!r}: parameters must be an object.")
            binary_flag = oparams.get("binary_data")
            outputs.append(
                RequestedOutput(obj["name"], binary_flag if isinstance(binary_flag, bool) else None, oparams)
            )
    return InferRequest(inputs=inputs, id=rid, outputs=outputs, parameters=params)


class DataPlane:
    """What every OIP transport asks of the server."""

    def __init__(self, runtime: Runtime, *, server_version: str = "") -> None:
        self.runtime = runtime
        self.server_version = server_version
        self._versions: dict[str, str | None] = {}

    # ------------------------------------------------------------------ health
    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self.runtime.ready

    def server_metadata(self) -> dict[str, Any]:
        return {"name": "modelaas", "version": self.server_version, "extensions": list(EXTENSIONS)}

    # ------------------------------------------------------------------ models
    def model(self, name: str, version: str | None = None) -> ModelAdapter:
        """The model, if it serves ``version`` (None or ``""``: whatever it serves); 404 otherwise."""
        adapter = self.runtime.model(name)
        if version:
            declared = self.version_of(adapter)
            active = adapter.serving_version
            if version != declared and (active is None or version != str(active)):
                serves = f"it serves version {declared!r}" if declared else "it declares no version"
                raise NotFound(f"Model {name!r} has no version {version!r}; {serves}.")
        return adapter

    def version_of(self, adapter: ModelAdapter) -> str | None:
        if adapter.name not in self._versions:
            try:
                meta = adapter.metadata()
            except ModelaasError:
                meta = {}
            found = meta.get("version", meta.get("Version"))
            self._versions[adapter.name] = str(found) if found not in (None, "") else None
        return self._versions[adapter.name]

    def model_ready(self, name: str, version: str | None = None) -> bool:
        self.model(name, version)
        return self.runtime.ready

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        adapter = self.model(name, version)
        declared = self.version_of(adapter)
        served = [declared] if declared else []
        if adapter.serving_version is not None:  # a registered version is active (docs/versions.md)
            served.append(str(adapter.serving_version))
        return {
            "name": adapter.name,
            "versions": served,
            "platform": f"modelaas_{adapter.interface}",
            "inputs": [t.to_json() for t in inputs_of(adapter)],
            "outputs": [t.to_json() for t in outputs_of(adapter)],
        }

    # ------------------------------------------------------------------- infer
    async def infer(
        self,
        name: str,
        version: str | None,
        request: InferRequest,
        *,
        gone: Callable[[], Awaitable[bool]] | None = None,
        spool_root: Path | None = None,
    ) -> InferResponse:
        adapter = self.model(name, version)
        params = adapter.params_for("predict")  # 501 for a model without predict
        declared = outputs_of(adapter)
        wanted = self._wanted(request, [o.name for o in declared])
        uploads = Uploads(spool_root or self.runtime.settings.upload_dir)
        try:
            raw = raw_arguments(params, request.inputs, uploads)
            try:
                if adapter.output_tensors:
                    output = await self.runtime.predict_output(name, raw, gone=gone, spool_root=spool_root)
                    tensors = _typed_outputs(adapter, output)
                else:
                    answer = await self.runtime.predict(
                        name, raw, accept=None, gone=gone, envelope=True, spool_root=spool_root
                    )
                    if answer.is_json:
                        content = json.dumps(to_jsonable(answer.json), allow_nan=False).encode("utf-8")
                    elif answer.content is not None:
                        content = answer.content
                    else:
                        assert answer.path is not None
                        content = Path(answer.path).read_bytes()
                    meta = {"content_type": answer.media_type}
                    tensors = [Tensor(ANSWER_OUTPUT, "BYTES", (1,), data=[content], parameters=meta)]
            except ValidationError as exc:
                raise TensorError(validation_message(exc)) from None
        finally:
            uploads.cleanup()
        by_name = {t.name: t for t in tensors}
        outputs = [(by_name[o.name], o.binary if o.binary is not None else request.binary_output) for o in wanted]
        return InferResponse(adapter.name, self.version_of(adapter), request.id, outputs)

    @staticmethod
    def _wanted(request: InferRequest, names: list[str]) -> list[RequestedOutput]:
        if request.outputs is None:
            return [RequestedOutput(n) for n in names]
        for out in request.outputs:
            if out.name not in names:
                raise TensorError(f"Output {out.name!r} is not an output of this model; it has {', '.join(names)}.")
            if "classification" in out.parameters:
                raise TensorError(f"Output {out.name!r}: the classification extension is not supported.")
        return request.outputs


def _typed_outputs(adapter: ModelAdapter, output: Any) -> list[Tensor]:
    """A typed model's returned array(s) as its declared output tensors (OutputInvalid if they do not fit)."""
    import numpy as np

    assert adapter.output_tensors is not None
    tensors = []
    for name, spec in adapter.output_tensors:
        value = output
        if isinstance(output, dict):
            value = output.get(name)
        array = np.asarray(value)
        if spec.datatype != "BYTES" and array.dtype.kind not in "biuf":
            raise OutputInvalid(f"Output {name!r} of model {adapter.name!r} is not numeric ({array.dtype}).")
        problem = spec.check_shape(array.shape)
        if problem:
            raise OutputInvalid(f"Output {name!r} of model {adapter.name!r} {problem}.")
        if spec.datatype != "BYTES" and datatype_of_dtype(array.dtype) != spec.datatype:
            array = array.astype(DATATYPES[spec.datatype].numpy)
        tensors.append(tensor_from_array(name, array, spec.datatype))
    return tensors
