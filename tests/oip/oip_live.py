"""A real server on loopback (HTTP and gRPC, uvicorn in a thread) around OIP fixture models, for real clients."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from modelaas.model.adapters import TypedAdapter
from modelaas.runtime import Runtime
from modelaas.settings import Settings
from modelaas.web.app import create_app
from support import load_fixture, wait_for


@dataclass
class LiveServer:
    url: str
    """``127.0.0.1:<port>`` (what tritonclient takes)."""
    settings: Settings
    grpc_url: str
    """``127.0.0.1:<grpc port>``: the same models over gRPC."""


def echo_models() -> list[TypedAdapter]:
    import tensor_echo

    return [TypedAdapter(f"echo-{name.lower()}", model) for name, model in tensor_echo.ECHOES.items()]


def oip_adapters(settings: Settings) -> list[Any]:
    return [
        load_fixture("tensors_typed:Iris", "iris", settings=settings),
        load_fixture("tensors_typed:Scaled", "scaled", settings=settings),
        load_fixture("v2_basic", "v2-basic", settings=settings),
        load_fixture("upload_echo:UploadEcho", "upload-echo", settings=settings),
        *echo_models(),
    ]


def serve_live(settings: Settings, port: int, adapters: list[Any]) -> Iterator[LiveServer]:
    """HTTP on ``port`` and gRPC on ``settings.grpc_port``, one event loop in a thread, until closed."""
    from modelaas.oip.grpc_server import start_grpc_server
    from modelaas.web.oip import dataplane_of

    app = create_app(settings, runtime=Runtime(settings, adapters))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)

    async def both() -> None:  # HTTP and gRPC on one loop, as in a serving process
        st = app.state.modelaas
        grpc_server = await start_grpc_server(dataplane_of(st), settings, st.tokens)
        try:
            await server.serve()
        finally:
            await grpc_server.stop(None)

    thread = threading.Thread(target=lambda: asyncio.run(both()), daemon=True)
    thread.start()
    wait_for(lambda: server.started or None, timeout=30, what="the OIP test server to start")
    try:
        yield LiveServer(f"127.0.0.1:{port}", settings, f"127.0.0.1:{settings.grpc_port}")
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def numpy_dtypes() -> dict[str, Any]:
    """Each OIP datatype and the numpy dtype clients use for it (BF16 has none)."""
    import numpy as np

    return {
        "BOOL": np.bool_,
        "UINT8": np.uint8,
        "UINT16": np.uint16,
        "UINT32": np.uint32,
        "UINT64": np.uint64,
        "INT8": np.int8,
        "INT16": np.int16,
        "INT32": np.int32,
        "INT64": np.int64,
        "FP16": np.float16,
        "FP32": np.float32,
        "FP64": np.float64,
        "BYTES": np.object_,
    }
