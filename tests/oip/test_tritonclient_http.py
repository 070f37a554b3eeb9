"""tritonclient's HTTP client, as published, against a modelaas server: the protocol as Triton's users meet it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

httpclient = pytest.importorskip("tritonclient.http")
from oip_live import numpy_dtypes  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

DTYPES = numpy_dtypes()
pytestmark = pytest.mark.slow

ROWS = np.array([[5.0, 3.4, 1.5, 0.2], [6.6, 3.0, 5.6, 2.0], [5.9, 2.8, 4.3, 1.3]], dtype=np.float32)


@pytest.fixture
def client(oip_server):
    c = httpclient.InferenceServerClient(oip_server.url, concurrency=4)
    yield c
    c.close()


def test_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.is_model_ready("iris", "1")
    assert not client.is_model_ready("iris", "7")
    server = client.get_server_metadata()
    assert server["name"] == "modelaas" and "binary_tensor_data" in server["extensions"]
    meta = client.get_model_metadata("iris")
    assert meta["inputs"][0]["name"] == "x"
    assert (meta["inputs"][0]["datatype"], meta["inputs"][0]["shape"]) == ("FP32", [-1, 4])
    assert meta["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [-1]}]
    assert client.get_model_metadata("iris", "1")["versions"] == ["1"]


@pytest.mark.parametrize("binary", [True, False])
def test_infer_iris_json_and_binary(client, binary):
    x = httpclient.InferInput("x", list(ROWS.shape), "FP32")
    x.set_data_from_numpy(ROWS, binary_data=binary)
    out = httpclient.InferRequestedOutput("label", binary_data=binary)
    result = client.infer("iris", [x], outputs=[out], request_id="req-1")
    assert result.as_numpy("label").tolist() == [0, 2, 1]
    assert result.get_response()["id"] == "req-1"
    assert result.get_output("label")["datatype"] == "INT64"


def test_infer_without_requested_outputs_answers_binary(client):
    """No outputs named: tritonclient asks for all of them as binary data (binary_data_output)."""
    x = httpclient.InferInput("x", [1, 4], "FP32")
    x.set_data_from_numpy(ROWS[:1])
    result = client.infer("iris", [x])
    assert result.as_numpy("label").tolist() == [0]
    assert result.get_output("label")["parameters"]["binary_data_size"] == 8


@pytest.mark.parametrize("datatype", sorted(DTYPES))
@pytest.mark.parametrize("binary", [True, False])
def test_every_datatype_round_trips(client, datatype, binary):
    if datatype == "BYTES":
        data = np.array([[b"abc", b""], ["h\u00e9".encode(), b"x y"]], dtype=np.object_)
    elif datatype == "BOOL":
        data = np.array([[True, False, True], [False, False, True]])
    else:
        info = np.iinfo(DTYPES[datatype]) if np.issubdtype(DTYPES[datatype], np.integer) else None
        values = [[info.min, 0, info.max], [1, 2, 3]] if info else [[-1.5, 0.0, 2.25], [1e3, -7.0, 0.5]]
        data = np.array(values, dtype=DTYPES[datatype])
    x = httpclient.InferInput("x", list(data.shape), datatype)
    x.set_data_from_numpy(data, binary_data=binary)
    result = client.infer(
        f"echo-{datatype.lower()}", [x], outputs=[httpclient.InferRequestedOutput("output0", binary_data=binary)]
    )
    got = result.as_numpy("output0")
    assert result.get_output("output0")["datatype"] == datatype
    assert got.shape == data.shape
    if datatype == "BYTES" and not binary:  # tritonclient gives JSON BYTES back as text
        got = np.vectorize(str.encode, otypes=[object])(got)
    assert got.tolist() == data.tolist()


def test_async_infer(client):
    requests = []
    for i in range(6):
        x = httpclient.InferInput("x", [1, 4], "FP32")
        x.set_data_from_numpy(ROWS[i % 3 : i % 3 + 1])
        requests.append(client.async_infer("iris", [x], request_id=str(i)))
    labels = [r.get_result().as_numpy("label").tolist() for r in requests]
    assert labels == [[0], [2], [1], [0], [2], [1]]


def test_a_deepaas_model_over_oip(client):
    count = httpclient.InferInput("count", [1], "INT32")
    count.set_data_from_numpy(np.array([4], dtype=np.int32))
    text = httpclient.InferInput("text", [1], "BYTES")
    text.set_data_from_numpy(np.array(["bonjour"], dtype=np.object_))
    values = httpclient.InferInput("values", [3], "FP64")
    values.set_data_from_numpy(np.array([1.0, 2.5, 3.0]))
    result = client.infer("v2-basic", [count, text, values])
    (answer,) = result.as_numpy("output").tolist()
    args = json.loads(answer)["predictions"]["args"]
    assert (args["count"], args["text"], args["values"]) == (4, "bonjour", [1.0, 2.5, 3.0])


def test_a_file_argument_as_bytes(client):
    data = httpclient.InferInput("data", [1], "BYTES")
    data.set_data_from_numpy(np.array([b"\x00\x01binary\xff"], dtype=np.object_))
    result = client.infer("upload-echo", [data])
    answer = json.loads(result.as_numpy("output")[0])["predictions"]
    assert answer["size"] == 9
    assert not os.path.exists(answer["path"])  # written for the call, deleted after it


def test_errors_name_the_tensor(client):
    x = httpclient.InferInput("x", [1, 3], "FP32")
    x.set_data_from_numpy(np.ones((1, 3), dtype=np.float32))
    with pytest.raises(InferenceServerException) as info:
        client.infer("iris", [x])
    assert "'x'" in info.value.message() and "[-1, 4]" in info.value.message()
    assert info.value.status() == "400"
    x = httpclient.InferInput("x", [1, 4], "FP64")
    x.set_data_from_numpy(np.ones((1, 4)))
    with pytest.raises(InferenceServerException, match=r"FP64.*FP32"):
        client.infer("iris", [x])
    with pytest.raises(InferenceServerException, match="nothing"):
        client.get_model_metadata("nothing")
