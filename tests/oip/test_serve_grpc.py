"""``modelaas serve --grpc-port``: every serving process serves gRPC on the shared port, with the server's tokens."""

from __future__ import annotations

import signal
import time

import pytest

np = pytest.importorskip("numpy")
grpcclient = pytest.importorskip("tritonclient.grpc")
from oip_live import free_port  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = pytest.mark.slow

TOKEN = "grpc-predict-token-0123456789"


def test_serve_with_grpc_workers_and_tokens(server):
    port = free_port()
    srv = server(
        "--model", "tensors_typed:Iris", "--model-name", "iris", "--workers", "2",
        "--grpc-port", str(port), env={"MODELAAS_TOKENS": f"predict {TOKEN}"},
    )  # fmt: skip
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
    try:
        assert client.is_server_ready()  # public
        x = grpcclient.InferInput("x", [1, 4], "FP32")
        x.set_data_from_numpy(np.array([[6.6, 3.0, 5.6, 2.0]], dtype=np.float32))
        with pytest.raises(InferenceServerException) as info:
            client.infer("iris", [x])
        assert info.value.status() == "StatusCode.UNAUTHENTICATED"
        with pytest.raises(InferenceServerException) as info:
            client.infer("iris", [x], headers={"authorization": "Bearer not-a-token-of-this-server"})
        assert info.value.status() == "StatusCode.UNAUTHENTICATED"
        for _ in range(8):  # connections land on either serving process; each answers
            other = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
            result = other.infer("iris", [x], headers={"authorization": f"Bearer {TOKEN}"})
            assert result.as_numpy("label").tolist() == [2]
            other.close()
    finally:
        client.close()
    srv.proc.send_signal(signal.SIGTERM)
    code, _ = srv.wait_exit(timeout=40)
    assert code == 0


def test_a_taken_grpc_port_is_a_clear_start_up_failure(server):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        srv = server("--model", "tensors_typed:Iris", "--grpc-port", str(port), ready=False)
        deadline = time.monotonic() + 40
        while srv.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        code, err = srv.wait_exit(timeout=10)
    assert code != 0
    assert f"Cannot serve gRPC on 127.0.0.1:{port}" in err
