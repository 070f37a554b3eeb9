"""OIP over REST, in process: errors, binary lengths, versions, slashes, tokens, typed tensors on DEEPaaS routes."""

from __future__ import annotations

import json
import struct

import pytest

from support import load_fixture

np = pytest.importorskip("numpy")

TOKEN = "predict-token-0123456789abcdef"
READ_ONLY = "train-token-0123456789abcdef"


def iris(settings):
    return load_fixture("tensors_typed:Iris", "iris", settings=settings)


@pytest.fixture
def client(make_client, settings):
    scaled = load_fixture("tensors_typed:Scaled", "scaled", settings=settings)
    return make_client(iris(settings), "v2_basic", scaled)


def iris_input(data, shape=(1, 4), datatype="FP32"):
    return {"inputs": [{"name": "x", "datatype": datatype, "shape": list(shape), "data": data}]}


def binary_request(header: dict, blob: bytes) -> tuple[bytes, dict[str, str]]:
    text = json.dumps(header).encode()
    return text + blob, {"Inference-Header-Content-Length": str(len(text)), "Content-Type": "application/octet-stream"}


def test_json_infer_nested_or_flat_with_id(client):
    rows = [[5.0, 3.4, 1.5, 0.2], [6.6, 3.0, 5.6, 2.0]]
    for data in (rows, [v for r in rows for v in r]):
        r = client.post("/v2/models/iris/infer", json={"id": "abc", **iris_input(data, (2, 4))})
        assert r.status_code == 200, r.text
        assert r.json() == {
            "model_name": "iris",
            "model_version": "1",
            "id": "abc",
            "outputs": [{"name": "label", "datatype": "INT64", "shape": [2], "data": [0, 2]}],
        }


def test_binary_request_and_binary_answer(client):
    rows = np.array([[6.6, 3.0, 5.6, 2.0]], dtype=np.float32)
    header = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": 16}}],
        "outputs": [{"name": "label", "parameters": {"binary_data": True}}],
    }
    body, headers = binary_request(header, rows.tobytes())
    r = client.post("/v2/models/iris/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    head = json.loads(r.content[:n])
    assert head["outputs"][0]["parameters"] == {"binary_data_size": 8}
    assert struct.unpack("<q", r.content[n:]) == (2,)


@pytest.mark.parametrize(
    ("header", "blob", "says"),
    [
        ({"binary_data_size": 12}, b"\0" * 12, "needs 16 bytes"),
        ({"binary_data_size": 20}, b"\0" * 16, "only 16 bytes"),
        ({"binary_data_size": 16}, b"\0" * 20, "4 bytes of binary data"),
    ],
)
def test_binary_lengths_that_do_not_add_up(client, header, blob, says):
    req = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "parameters": header}]}
    body, headers = binary_request(req, blob)
    r = client.post("/v2/models/iris/infer", content=body, headers=headers)
    assert r.status_code == 400
    assert says in r.json()["error"]
    assert set(r.json()) == {"error", "request_id"} and r.json()["request_id"] == r.headers["x-request-id"]


def test_header_length_past_the_body(client):
    r = client.post("/v2/models/iris/infer", content=b"{}", headers={"Inference-Header-Content-Length": "50"})
    assert r.status_code == 400 and "Inference-Header-Content-Length" in r.json()["error"]


@pytest.mark.parametrize(
    ("request_json", "says"),
    [
        (iris_input([1, 2, 3], (1, 3)), "'x' has shape [1, 3]"),
        (iris_input([1, 2, 3], (1, 4)), "needs 4 elements, but data has 3"),
        (iris_input([1, 2, 3, 4], (1, 4), "FP64"), "datatype FP64; the model takes FP32"),
        (iris_input([1, 2, 3, 4], (1, 4), "FLOAT"), "datatype 'FLOAT' is not one of"),
        (iris_input([1, 2, 3, 4], (1, 4), {"a": 1}), "datatype {'a': 1} is not one of"),  # not a name at all
        (iris_input(["a", 2, 3, 4], (1, 4)), "'a' is not a FP32 value"),
        (iris_input([1, 2, 3, 4], (1, -4)), "negative size"),
        ({"inputs": [{"name": "y", "datatype": "FP32", "shape": [1], "data": [1]}]}, "'y' is not an input"),
        ({"inputs": []}, "Input 'x': Missing data"),
        ({"input": []}, "needs 'inputs'"),
        ({**iris_input([1, 2, 3, 4]), "outputs": [{"name": "nope"}]}, "'nope' is not an output"),
    ],
)
def test_bad_tensors_get_a_400_naming_them(client, request_json, says):
    r = client.post("/v2/models/iris/infer", json=request_json)
    assert r.status_code == 400, r.text
    assert says in r.json()["error"]


def test_integer_ranges_are_checked(client):
    r = client.post(
        "/v2/models/v2-basic/infer",
        json={"inputs": [{"name": "count", "datatype": "UINT8", "shape": [1], "data": [300]}]},
    )
    assert r.status_code == 400 and "out of the range of UINT8" in r.json()["error"]


def test_deeply_nested_header_is_refused(client):
    nested = "[" * 70 + "]" * 70  # past the nesting limit, yet valid JSON Python parses
    body = '{"inputs": [], "parameters": {"deep": ' + nested + "}}"
    r = client.post("/v2/models/iris/infer", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "too deeply" in r.json()["error"]


def test_not_json(client):
    r = client.post("/v2/models/iris/infer", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]


def test_model_validation_errors_are_400_naming_the_input(client):
    r = client.post(
        "/v2/models/v2-basic/infer",
        json={
            "inputs": [
                {"name": "count", "datatype": "INT64", "shape": [1], "data": [1]},
                {"name": "level", "datatype": "INT64", "shape": [1], "data": [99]},
            ]
        },
    )
    assert r.status_code == 400 and r.json()["error"].startswith("Input 'level':")
    r = client.post(
        "/v2/models/v2-basic/infer",
        json={"inputs": [{"name": "count", "datatype": "INT64", "shape": [2], "data": [1, 2]}]},
    )
    assert r.status_code == 400 and "has 2 elements; this argument takes one value" in r.json()["error"]


def test_versions(client):
    assert client.get("/v2/models/iris/versions/1").json()["versions"] == ["1"]
    r = client.get("/v2/models/iris/versions/2")
    assert r.status_code == 404 and r.json()["error"] == "Model 'iris' has no version '2'; it serves version '1'."
    assert client.get("/v2/models/scaled/versions/1").status_code == 404  # declares none
    r = client.post("/v2/models/iris/versions/1/infer", json=iris_input([5.0, 3.4, 1.5, 0.2]))
    assert r.json()["outputs"][0]["data"] == [0]
    assert client.post("/v2/models/iris/versions/3/infer", json=iris_input([1, 2, 3, 4])).status_code == 404


def test_unknown_model_is_an_oip_404(client):
    for r in (
        client.get("/v2/models/nope"),
        client.get("/v2/models/nope/ready"),
        client.post("/v2/models/nope/infer", json={"inputs": []}),
    ):
        assert r.status_code == 404 and "No model named 'nope'" in r.json()["error"]


def test_where_oip_and_deepaas_paths_meet(client):
    """No slash: the OIP answer; a slash: the DEEPaaS one (both sides kept)."""
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    assert client.get("/v2/").json()["id"] == "v2"
    assert client.get("/v2/models/iris").json()["platform"] == "modelaas_typed"
    assert client.get("/v2/models/iris/").json()["id"] == "iris"
    assert client.get("/v2/models").status_code == 200  # still the DEEPaaS list, through its redirect
    r = client.post("/v2/models/iris/infer/", json=iris_input([1, 2, 3, 4]), follow_redirects=False)
    assert r.status_code in (307, 308) and r.headers["location"].endswith("/v2/models/iris/infer")
    r = client.get("/v2/models/iris/train", follow_redirects=False)  # the DEEPaaS redirects are unchanged
    assert r.status_code == 308 and r.headers["location"].endswith("/v2/models/iris/train/")


def test_readiness(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}


def test_model_metadata_of_a_deepaas_model(client):
    meta = client.get("/v2/models/v2-basic").json()
    by_name = {t["name"]: t for t in meta["inputs"]}
    assert (by_name["count"]["datatype"], by_name["count"]["shape"]) == ("INT64", [1])
    assert (by_name["values"]["datatype"], by_name["values"]["shape"]) == ("FP64", [-1])
    assert by_name["options"]["parameters"]["content"] == "json"
    assert by_name["renamed-arg"]["datatype"] == "BYTES"
    assert meta["outputs"] == [
        {"name": "output", "datatype": "BYTES", "shape": [1], "parameters": {"content_type": "application/json"}}
    ]


def test_typed_tensors_on_the_deepaas_route(client):
    r = client.post("/v2/models/scaled/predict/", json={"x": [[1, 2], [3, 4]], "factor": 3})
    assert r.status_code == 200 and r.json() == {"status": "OK", "predictions": [3.0, 6.0, 9.0, 12.0]}
    r = client.post("/v2/models/scaled/predict/", json={"x": [[1, 2, 3]]})
    assert r.status_code == 422 and "shape [1, 3]" in r.json()["x"][0]
    r = client.post(
        "/v2/models/scaled/infer",
        json={
            "inputs": [
                {"name": "x", "datatype": "FP64", "shape": [2, 1], "data": [1, 2]},
                {"name": "offset", "datatype": "FP64", "shape": [2, 1], "data": [10, 20]},
                {"name": "factor", "datatype": "FP32", "shape": [1], "data": [0.5]},
            ]
        },
    )
    assert r.json()["outputs"][0]["data"] == [10.5, 21.0]


def test_oip_routes_take_the_same_tokens(make_client, settings):
    client = make_client(iris(settings), tokens=f"predict {TOKEN}; train {READ_ONLY}")
    assert client.get("/v2/health/ready").status_code == 200  # public
    r = client.get("/v2/models/iris")
    assert r.status_code == 401 and "access token" in r.json()["error"]
    assert client.get("/v2/models/iris", headers={"Authorization": f"Bearer {READ_ONLY}"}).status_code == 200
    r = client.post(
        "/v2/models/iris/infer", json=iris_input([1, 2, 3, 4]), headers={"Authorization": f"Bearer {READ_ONLY}"}
    )
    assert r.status_code == 403 and "'predict' scope" in r.json()["error"]
    r = client.post(
        "/v2/models/iris/infer", json=iris_input([1, 2, 3, 4]), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert r.status_code == 200
    r = client.get("/v2/models/iris/", headers={})  # the DEEPaaS route keeps its error shape
    assert r.status_code == 401 and "message" in r.json()


def test_body_limit(make_client, settings):
    client = make_client(iris(settings), client_max_size=1024)
    r = client.post("/v2/models/iris/infer", json=iris_input([1.0] * 400, (100, 4)))
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_without_the_predict_endpoint_there_is_no_infer(make_client, settings):
    client = make_client(iris(settings), predict_endpoint=False)
    assert client.get("/v2/models/iris").status_code == 200
    assert client.post("/v2/models/iris/infer", json=iris_input([1, 2, 3, 4])).status_code in (404, 405)


def test_a_model_without_predict(make_client, settings):
    client = make_client("train_only")
    meta = client.get("/v2/models/train-only").json()
    assert (meta["inputs"], meta["outputs"]) == ([], [])
    r = client.post("/v2/models/train-only/infer", json={"inputs": []})
    assert r.status_code == 501 and "predict" in r.json()["error"]


def test_a_file_and_a_v1_model_over_oip(make_client, settings):
    client = make_client(load_fixture("v1_seed", "v1-seed", settings=settings))
    meta = client.get("/v2/models/v1-seed").json()
    assert {t["name"]: (t["datatype"], t["shape"]) for t in meta["inputs"]}["data"] == ("BYTES", [-1])
    body = {"inputs": [{"name": "data", "datatype": "BYTES", "shape": [1], "data": ["some text"]}]}
    r = client.post("/v2/models/v1-seed/infer", json=body)
    assert r.status_code == 200, r.text
    (answer,) = r.json()["outputs"][0]["data"]
    assert json.loads(answer)["predictions"]["size"] == 18  # 9 bytes, times the default scale of 2


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/models/iris/infer"),
        ("DELETE", "/v2/health/live"),
        ("POST", "/v2"),
        ("PUT", "/v2/models/iris/ready"),
    ],
)
def test_wrong_method_on_an_oip_path_is_an_oip_error(client, method, path):
    r = client.request(method, path)
    assert r.status_code == 405 and "allow" in r.headers
    assert set(r.json()) == {"error", "request_id"}


def test_wrong_method_on_a_deepaas_path_keeps_its_shape(client):
    r = client.request("PUT", "/v2/models/iris/predict/")
    assert r.status_code == 405 and "message" in r.json() and "error" not in r.json()


def test_unknown_model_is_404_whatever_the_body(client):
    r = client.post("/v2/models/nope/infer", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 404 and "nope" in r.json()["error"]


def test_a_body_that_stops_coming_is_a_408_in_the_protocols_shape(tmp_path):
    import anyio

    from modelaas.runtime import Runtime
    from modelaas.settings import Settings
    from modelaas.web.app import create_app

    s = Settings(data_dir=tmp_path, body_timeout=0.3)
    app = create_app(s, runtime=Runtime.load(s))
    answer: dict = {"body": b""}

    async def receive():
        if answer.get("sent"):
            await anyio.sleep(3600)  # the rest of the body never comes
        answer["sent"] = True
        return {"type": "http.request", "body": b'{"inputs": [', "more_body": True}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    path = "/v2/models/modelaas-demo/infer"
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 5000), "state": {}, "headers": [(b"content-type", b"application/json")],
    }  # fmt: skip

    async def drive():
        async with app.router.lifespan_context(app):
            with anyio.fail_after(10):
                await app(scope, receive, send)

    anyio.run(drive)
    assert answer["status"] == 408 and answer["headers"]["connection"] == "close"
    body = json.loads(answer["body"])
    assert "--body-timeout" in body["error"] and set(body) == {"error", "request_id"}
