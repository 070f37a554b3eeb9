"""The examples of docs/oip.md run as written: the typed model, the curl request and answer, tritonclient."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from modelaas.model.adapters import TypedAdapter
from modelaas.settings import Settings

pytest.importorskip("numpy")
pytestmark = pytest.mark.slow
DOC = Path(__file__).resolve().parents[2] / "docs" / "oip.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def iris_server(tmp_path_factory):
    from oip_live import free_port, serve_live

    from support import load_fixture

    namespace: dict = {}
    exec(compile(blocks("python")[0], str(DOC), "exec"), namespace)
    settings = Settings(data_dir=tmp_path_factory.mktemp("docs"), train_endpoint=False, grpc_port=free_port())
    adapters = [TypedAdapter("iris", namespace["Iris"]()), load_fixture("v2_basic", "v2-basic", settings=settings)]
    yield from serve_live(settings, free_port(), adapters)


def test_the_curl_examples(iris_server):
    if subprocess.run(["which", "curl"], capture_output=True).returncode != 0:
        pytest.skip("no curl")
    text = blocks("bash")[1]
    commands = [c.strip() for c in text.replace("\\\n", " ").splitlines() if c.startswith("curl")]
    answers = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    assert len(commands) == 2
    outs = []
    for command in commands:
        argv = [a.replace("localhost:5000", iris_server.url) for a in shlex.split(command)]
        outs.append(subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout)
    assert json.loads(outs[0])["inputs"][0]["shape"] == [-1, 4]
    assert json.loads(outs[1]) == json.loads(answers[0])
    (deepaas_call,) = [c for c in blocks("bash")[2].replace("\\\n", " ").splitlines() if c.startswith("curl")]
    argv = [a.replace("localhost:5000", iris_server.url) for a in shlex.split(deepaas_call)]
    answer = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout)
    (out,) = answer["outputs"]
    assert (out["name"], out["datatype"]) == ("output", "BYTES")
    assert out["parameters"] == {"content_type": "application/json"}
    assert json.loads(out["data"][0])["predictions"]["args"]["count"] == 3


def test_the_tritonclient_example(iris_server):
    pytest.importorskip("tritonclient.grpc")
    source = blocks("python")[1].replace("localhost:5000", iris_server.url)
    source = source.replace("localhost:8001", iris_server.grpc_url)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, str(DOC), "exec"), {})
    assert printed.getvalue().split("\n")[:2] == ["[0 2]", "[0 2]"]


def test_the_serve_command(server, tmp_path):
    """The model block saved as iris_model.py, served with the documented command, answers over gRPC."""
    grpcclient = pytest.importorskip("tritonclient.grpc")
    import numpy as np
    from oip_live import free_port

    (tmp_path / "iris_model.py").write_text(blocks("python")[0])
    (serve,) = [line for line in blocks("bash")[0].splitlines() if line.startswith("modelaas serve")]
    port = free_port()
    argv = [a if a != "8001" else str(port) for a in shlex.split(serve)[2:]]
    server(*argv, env={"PYTHONPATH": str(tmp_path)})
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
    x = grpcclient.InferInput("x", [1, 4], "FP32")
    x.set_data_from_numpy(np.array([[6.7, 3.0, 5.2, 2.3]], dtype=np.float32))
    assert client.infer("iris", [x]).as_numpy("label").tolist() == [2]
    client.close()
