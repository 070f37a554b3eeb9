"""The Open Inference Protocol over gRPC, with tritonclient's gRPC client as published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
grpcclient = pytest.importorskip("tritonclient.grpc")
from oip_live import numpy_dtypes  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = pytest.mark.slow

ROWS = np.array([[5.0, 3.4, 1.5, 0.2], [6.6, 3.0, 5.6, 2.0], [5.9, 2.8, 4.3, 1.3]], dtype=np.float32)
DTYPES = numpy_dtypes()


@pytest.fixture
def client(oip_server):
    c = grpcclient.InferenceServerClient(oip_server.grpc_url)
    yield c
    c.close()


def test_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.is_model_ready("iris", "1")
    assert client.get_server_metadata(as_json=True)["extensions"] == ["binary_tensor_data"]
    meta = client.get_model_metadata("iris", as_json=True)
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": ["-1", "4"]}]  # int64 as JSON text
    assert meta["outputs"][0]["name"] == "label"
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata("iris", "9")
    assert info.value.status() == "StatusCode.NOT_FOUND"


def test_infer_iris(client):
    x = grpcclient.InferInput("x", list(ROWS.shape), "FP32")
    x.set_data_from_numpy(ROWS)
    result = client.infer("iris", [x], outputs=[grpcclient.InferRequestedOutput("label")], request_id="g-1")
    assert result.as_numpy("label").tolist() == [0, 2, 1]
    assert result.get_response().id == "g-1"


@pytest.mark.parametrize("datatype", sorted(DTYPES))
def test_every_datatype_round_trips(client, datatype):
    if datatype == "BYTES":
        data = np.array([[b"abc", b""], ["h\u00e9".encode(), b"\x00\xff"]], dtype=np.object_)
    elif datatype == "BOOL":
        data = np.array([[True, False, True], [False, False, True]])
    else:
        info = np.iinfo(DTYPES[datatype]) if np.issubdtype(DTYPES[datatype], np.integer) else None
        values = [[info.min, 0, info.max], [1, 2, 3]] if info else [[-1.5, 0.0, 2.25], [1e3, -7.0, 0.5]]
        data = np.array(values, dtype=DTYPES[datatype])
    x = grpcclient.InferInput("x", list(data.shape), datatype)
    x.set_data_from_numpy(data)
    result = client.infer(f"echo-{datatype.lower()}", [x])
    assert result.as_numpy("output0").tolist() == data.tolist()


def test_async_infer(client):
    done = []

    def callback(result, error):
        done.append((result, error))

    for i in range(3):
        x = grpcclient.InferInput("x", [1, 4], "FP32")
        x.set_data_from_numpy(ROWS[i : i + 1])
        client.async_infer("iris", [x], callback, request_id=str(i))
    from support import wait_for

    wait_for(lambda: len(done) == 3 or None, timeout=30, what="three answers")
    assert all(error is None for _, error in done)
    labels = {r.get_response().id: r.as_numpy("label").tolist() for r, _ in done}
    assert labels == {"0": [0], "1": [2], "2": [1]}


def test_a_deepaas_model_over_grpc(client):
    count = grpcclient.InferInput("count", [1], "INT64")
    count.set_data_from_numpy(np.array([7], dtype=np.int64))
    result = client.infer("v2-basic", [count])
    answer = json.loads(result.as_numpy("output")[0])
    assert answer["predictions"]["args"]["count"] == 7
    assert result.get_output("output").parameters["content_type"].string_param == "application/json"


def test_errors_are_invalid_argument_naming_the_tensor(client):
    x = grpcclient.InferInput("x", [1, 3], "FP32")
    x.set_data_from_numpy(np.ones((1, 3), dtype=np.float32))
    with pytest.raises(InferenceServerException) as info:
        client.infer("iris", [x])
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT" and "'x'" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        client.infer("v2-basic", [])
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT" and "'count'" in info.value.message()


def test_the_checked_in_descriptor_is_the_compiled_proto(tmp_path):
    pytest.importorskip("grpc_tools")
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "compile_oip_proto.py"
    spec = importlib.util.spec_from_file_location("compile_oip_proto", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.compile_proto(tmp_path / "out.binpb")
    assert (tmp_path / "out.binpb").read_bytes() == (module.PROTO_DIR / "open_inference.binpb").read_bytes()
