"""The Open Inference Protocol over gRPC: ``inference.GRPCInferenceService`` over the same :class:`DataPlane`.

The messages come from ``proto/open_inference.proto``, compiled by grpcio-tools into the
checked-in ``proto/open_inference.binpb`` and loaded into a descriptor pool of modelaas's
own: a process that also imports another copy of the protocol (``tritonclient.grpc``, a
model calling Triton) registers the same message names in protobuf's default pool without
a clash. Each serving process serves ``--grpc-port`` (the port is shared with
``SO_REUSEPORT``, so the kernel spreads connections over the processes as it does for HTTP).

Tokens travel in the ``authorization`` metadata (``Bearer <token>``) and need what the REST
routes need: none for health and server metadata, any token for model metadata and
readiness, the ``predict`` scope for ``ModelInfer``. Errors carry the gRPC code of their
HTTP status (400 ``INVALID_ARGUMENT``, 404 ``NOT_FOUND``, 503 ``UNAVAILABLE``...).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from modelaas.errors import ConfigError, ModelaasError
from modelaas.model.tensors import DATATYPES
from modelaas.oip.codec import Tensor, TensorError, check_raw, read_data, read_shape
from modelaas.oip.dataplane import DataPlane, InferRequest, RequestedOutput
from modelaas.settings import Settings
from modelaas.tokens import ANY_TOKEN, PREDICT, PUBLIC, TokenTable, grants

log = logging.getLogger("modelaas.oip")
SERVICE = "inference.GRPCInferenceService"

_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
"""Where typed ``contents`` hold each datatype (FP16 and BF16 travel as raw contents only)."""


def message_classes() -> dict[str, Any]:
    """The protocol's message classes, by name, from a descriptor pool of modelaas's own."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    data = resources.files("modelaas.oip").joinpath("proto/open_inference.binpb").read_bytes()
    pool = descriptor_pool.DescriptorPool()
    for proto in descriptor_pb2.FileDescriptorSet.FromString(data).file:
        pool.Add(proto)
    service = pool.FindServiceByName(SERVICE)
    out: dict[str, Any] = {}
    for method in service.methods:
        out[method.input_type.name] = message_factory.GetMessageClass(method.input_type)
        out[method.output_type.name] = message_factory.GetMessageClass(method.output_type)
    out["InferParameter"] = message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.InferParameter"))
    return out


_NEEDS = {
    "ServerLive": PUBLIC,
    "ServerReady": PUBLIC,
    "ServerMetadata": PUBLIC,
    "ModelReady": ANY_TOKEN,
    "ModelMetadata": ANY_TOKEN,
    "ModelInfer": PREDICT,
}


class InferenceService:
    """The six calls, each parse -> data plane -> message; errors as gRPC status codes."""

    def __init__(self, plane: DataPlane, tokens: TokenTable) -> None:
        self.plane = plane
        self.tokens = tokens
        self.m = message_classes()

    def handler(self) -> Any:
        import grpc

        calls: dict[str, Callable[[Any, Any], Awaitable[Any]]] = {
            "ServerLive": self.server_live,
            "ServerReady": self.server_ready,
            "ServerMetadata": self.server_metadata,
            "ModelReady": self.model_ready,
            "ModelMetadata": self.model_metadata,
            "ModelInfer": self.model_infer,
        }
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                self._guarded(name, call),
                request_deserializer=self.m[f"{name}Request"].FromString,
                response_serializer=self.m[f"{name}Response"].SerializeToString,
            )
            for name, call in calls.items()
        }
        return grpc.method_handlers_generic_handler(SERVICE, handlers)

    def _guarded(self, name: str, call: Callable[[Any, Any], Awaitable[Any]]) -> Callable[[Any, Any], Awaitable[Any]]:
        import grpc

        need = _NEEDS[name]

        async def run(request: Any, context: Any) -> Any:
            if need != PUBLIC and self.tokens.enabled:
                refusal = self._refusal(context, need)
                if refusal is not None:
                    await context.abort(*refusal)
            try:
                return await call(request, context)
            except ModelaasError as exc:
                await context.abort(_code(exc.status), exc.message)
            except Exception:
                log.exception("Unexpected error answering gRPC %s", name)
                await context.abort(grpc.StatusCode.INTERNAL, "Internal server error; the server log has the details.")

        return run

    def _refusal(self, context: Any, need: str) -> tuple[Any, str] | None:
        import grpc

        given = dict(context.invocation_metadata() or ()).get("authorization")
        scheme, _, token = (given or "").strip().partition(" ")
        if not token or scheme.lower() != "bearer":
            return (
                grpc.StatusCode.UNAUTHENTICATED,
                "This call needs an access token: metadata 'authorization: Bearer <token>'.",
            )
        scopes = self.tokens.scopes_for(token.strip())
        if scopes is None:
            return grpc.StatusCode.UNAUTHENTICATED, "The access token is not valid."
        if need != ANY_TOKEN and not grants(scopes, need):
            return (
                grpc.StatusCode.PERMISSION_DENIED,
                f"This token may not use {need} calls: that needs the {need!r} scope.",
            )
        return None

    # ----------------------------------------------------------------- calls
    async def server_live(self, request: Any, context: Any) -> Any:
        return self.m["ServerLiveResponse"](live=self.plane.live())

    async def server_ready(self, request: Any, context: Any) -> Any:
        return self.m["ServerReadyResponse"](ready=self.plane.ready())

    async def server_metadata(self, request: Any, context: Any) -> Any:
        return self.m["ServerMetadataResponse"](**self.plane.server_metadata())

    async def model_ready(self, request: Any, context: Any) -> Any:
        return self.m["ModelReadyResponse"](ready=self.plane.model_ready(request.name, request.version or None))

    async def model_metadata(self, request: Any, context: Any) -> Any:
        meta = self.plane.model_metadata(request.name, request.version or None)
        for key in ("inputs", "outputs"):
            meta[key] = [{k: t[k] for k in ("name", "datatype", "shape")} for t in meta[key]]
        return self.m["ModelMetadataResponse"](**meta)

    async def model_infer(self, request: Any, context: Any) -> Any:
        parsed = infer_request(request)

        async def gone() -> bool:
            return bool(context.cancelled())

        result = await self.plane.infer(request.model_name, request.model_version or None, parsed, gone=gone)
        response = self.m["ModelInferResponse"](model_name=result.model_name, model_version=result.model_version or "")
        if result.id is not None:
            response.id = result.id
        for tensor, _binary in result.outputs:
            out = response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=list(tensor.shape))
            for key, value in tensor.parameters.items():
                set_parameter(out.parameters[key], value)
            from modelaas.oip.codec import to_raw

            response.raw_output_contents.append(to_raw(tensor))
        return response


def infer_request(request: Any) -> InferRequest:
    """A ``ModelInferRequest`` as the data plane's request (typed contents or raw contents, checked alike)."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise TensorError(f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs: one per input.")
    inputs = []
    for i, t in enumerate(request.inputs):
        label = f"Input {t.name!r}"
        if t.datatype not in DATATYPES:
            raise TensorError(f"{label}: datatype {t.datatype!r} is not one of {', '.join(DATATYPES)}.")
        tensor = Tensor(t.name, t.datatype, read_shape(list(t.shape), label), parameters=parameters(t.parameters))
        if raw:
            tensor.raw = raw[i]
            check_raw(tensor, label)
        else:
            field = _CONTENTS.get(t.datatype)
            if field is None:
                raise TensorError(f"{label}: {t.datatype} travels as raw_input_contents only.")
            values = list(getattr(t.contents, field))
            if t.datatype == "BYTES":
                if len(values) != tensor.count:
                    shape, n = list(tensor.shape), len(values)
                    raise TensorError(f"{label}: shape {shape} needs {tensor.count} elements, but contents has {n}.")
                tensor.data = values
            else:
                tensor.data = read_data(values, tensor, label)
        inputs.append(tensor)
    outputs = [RequestedOutput(o.name, parameters=parameters(o.parameters)) for o in request.outputs] or None
    return InferRequest(
        inputs=inputs, id=request.id or None, outputs=outputs, parameters=parameters(request.parameters)
    )


def parameters(given: Any) -> dict[str, Any]:
    out = {}
    for key, param in given.items():
        which = param.WhichOneof("parameter_choice")
        if which is not None:
            out[key] = getattr(param, which)
    return out


def set_parameter(param: Any, value: Any) -> None:
    if isinstance(value, bool):
        param.bool_param = value
    elif isinstance(value, int):
        param.int64_param = value
    elif isinstance(value, float):
        param.double_param = value
    else:
        param.string_param = str(value)


def _code(status: int) -> Any:
    import grpc

    codes = {
        400: grpc.StatusCode.INVALID_ARGUMENT,
        401: grpc.StatusCode.UNAUTHENTICATED,
        403: grpc.StatusCode.PERMISSION_DENIED,
        404: grpc.StatusCode.NOT_FOUND,
        408: grpc.StatusCode.DEADLINE_EXCEEDED,
        413: grpc.StatusCode.RESOURCE_EXHAUSTED,
        422: grpc.StatusCode.INVALID_ARGUMENT,
        429: grpc.StatusCode.RESOURCE_EXHAUSTED,
        499: grpc.StatusCode.CANCELLED,
        501: grpc.StatusCode.UNIMPLEMENTED,
        503: grpc.StatusCode.UNAVAILABLE,
        504: grpc.StatusCode.DEADLINE_EXCEEDED,
    }
    if status in codes:
        return codes[status]
    return grpc.StatusCode.INVALID_ARGUMENT if 400 <= status < 500 else grpc.StatusCode.INTERNAL


async def start_grpc_server(plane: DataPlane, settings: Settings, tokens: TokenTable) -> Any:
    """Serve the protocol on ``settings.grpc_port`` (its port shared by every serving process); returns the server."""
    # Model code may fork while the server runs (multiprocessing); such children do not use gRPC, so
    # gRPC's fork handlers (only needed by children that do) are left off unless the operator asks.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    try:
        import google.protobuf  # noqa: F401
        import grpc
    except ImportError:
        raise ConfigError("--grpc-port needs grpcio and protobuf: pip install 'modelaas[grpc]'.") from None

    if settings.grpc_port is None:
        raise ConfigError("No --grpc-port to serve gRPC on.")
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", min(settings.client_max_size, 2**31 - 1)),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 1),
        ]
    )
    server.add_generic_rpc_handlers((InferenceService(plane, tokens).handler(),))
    host = f"[{settings.listen_ip}]" if ":" in settings.listen_ip else settings.listen_ip
    server.add_insecure_port(f"{host}:{settings.grpc_port}")
    await server.start()
    return server
