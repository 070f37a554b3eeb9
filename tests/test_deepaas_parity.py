"""modelaas answers like DEEPaaS 2.6.0: the same demo model, both real servers, the same requests.

The virtualenv (``deepaas==2.6.0``, then modelaas non-editable, then the model packages)
and the two servers come from ``support_deepaas``; every request is made to both and the
answers compared.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from support_deepaas import Server, ask_both, deepaas_venv, parse_freeze, serve_both

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="session")
def parity_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return deepaas_venv(tmp_path_factory)


def test_installing_modelaas_changes_no_package_deepaas_installed(parity_venv: Path) -> None:
    before = parse_freeze(parity_venv / "freeze-deepaas.txt")
    after = parse_freeze(parity_venv / "freeze-modelaas.txt")
    assert "deepaas" in before and "webargs" in before and "marshmallow" in before
    changed = {name: (version, after.get(name)) for name, version in before.items() if after.get(name) != version}
    assert changed == {}, f"installing modelaas changed packages DEEPaaS installed (before, after): {changed}"


@pytest.fixture(scope="module")
def servers(parity_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    with serve_both(parity_venv, "demo-app", tmp_path_factory.mktemp("parity-run")) as started:
        for server in started.values():
            server.require()
        yield started


# ---------------------------------------------------------------------- requests

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00" + bytes(16)
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(32)


def _files(*, without: str | None = None) -> dict[str, tuple[str, bytes, str]]:
    files = {
        "demo-image": ("dot.png", PNG, "image/png"),
        "demo-audio": ("tone.wav", WAV, "audio/wav"),
        "demo-video": ("clip.mp4", MP4, "video/mp4"),
    }
    files.pop(without or "", None)
    return files


@dataclass(frozen=True)
class Call:
    """One predict request, made the same way to both servers."""

    data: dict[str, Any]
    query: str = ""
    files: tuple[str, ...] | None = None
    """Names of the media arguments to send (default: all three)."""
    headers: tuple[tuple[str, str], ...] = ()

    def send(self, base: str) -> httpx.Response:
        files = _files()
        if self.files is not None:
            files = {k: v for k, v in files.items() if k in self.files}
        url = f"{base}/v2/models/demo-app/predict/" + (f"?{self.query}" if self.query else "")
        return httpx.post(url, data=self.data, files=files, headers=dict(self.headers), timeout=60)


ALL_ARGS = {
    "demo-str": "héllo, wörld",
    "demo-str-choice": "choice1",
    "demo-int": "-5",
    "demo-int-range": "100",
    "demo-float": "2.5e-3",
    "demo-bool": "false",
    "demo-dict": '{"x": {"y": [1, 2.5, null]}, "z": "w"}',
    "demo-list-of-floats": ["0.5", "1.5", "-2"],
}

SUCCESSES = {
    "required-only": Call({"demo-int": "1"}),
    "all-optional-args": Call(ALL_ARGS),
    "args-in-query-string": Call({}, query="demo-int=3&demo-bool=1&demo-list-of-floats=1&demo-list-of-floats=2.25"),
    "range-lower-bound-and-true": Call({"demo-int": "0", "demo-int-range": "1", "demo-bool": "true"}),
    "one-float-in-list": Call({"demo-int": "42", "demo-list-of-floats": "7", "demo-str": ""}),
    "explicit-accept-json": Call({"demo-int": "2"}, headers=(("Accept", "application/json"),)),
}

FAILURES = {
    "missing-required-file": Call({"demo-int": "1"}, files=("demo-image", "demo-audio")),
    "missing-all-files": Call({"demo-int": "1"}, files=()),
    "missing-demo-int": Call({"demo-str": "x"}),
    "non-integer-demo-int": Call({"demo-int": "abc"}),
    "decimal-demo-int": Call({"demo-int": "1.5"}),
    "range-too-high": Call({"demo-int": "1", "demo-int-range": "101"}),
    "range-too-low": Call({"demo-int": "1", "demo-int-range": "0"}),
    "bad-choice": Call({"demo-int": "1", "demo-str-choice": "choice9"}),
    "bad-bool": Call({"demo-int": "1", "demo-bool": "maybe"}),
    "bad-float": Call({"demo-int": "1", "demo-float": "fast"}),
    "bad-item-in-list": Call({"demo-int": "1", "demo-list-of-floats": ["1", "x"]}),
    "bad-json-dict": Call({"demo-int": "1", "demo-dict": "[1, 2]"}),
    "everything-wrong": Call(
        {"demo-int": "x", "demo-int-range": "1000", "demo-str-choice": "no", "demo-float": "y"}, files=("demo-audio",)
    ),
}

# Cases where modelaas is known to answer unlike DEEPaaS 2.6.0: name -> reason (strict xfail).
KNOWN_DIFFERENCES: dict[str, str] = {}


def _case(name: str, call: Call) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[name])] if name in KNOWN_DIFFERENCES else []
    return pytest.param(call, id=name, marks=marks)


@pytest.mark.parametrize("path", ["/v2/models/", "/v2/models/demo-app/"])
def test_model_listing_is_the_same(servers: dict[str, Server], path: str) -> None:
    theirs, ours = ask_both(servers, lambda base: httpx.get(base + path, timeout=30))
    assert (theirs.status_code, ours.status_code) == (200, 200)
    assert ours.json() == theirs.json()


@pytest.mark.parametrize("call", [_case(name, call) for name, call in SUCCESSES.items()])
def test_successful_predict_is_the_same(servers: dict[str, Server], call: Call) -> None:
    theirs, ours = ask_both(servers, call.send)
    assert theirs.status_code == 200, theirs.text
    assert ours.status_code == 200, ours.text
    body = theirs.json()
    assert [m["size"] for m in body["media"]] == [len(PNG), len(WAV), len(MP4)]
    assert ours.json() == body


def test_png_answer_is_the_same(servers: dict[str, Server]) -> None:
    call = Call({"demo-int": "1"}, headers=(("Accept", "image/png"),))
    theirs, ours = ask_both(servers, call.send)
    assert (theirs.status_code, ours.status_code) == (200, 200)
    assert theirs.content == ours.content == PNG
    assert theirs.headers["content-type"].split(";")[0] == ours.headers["content-type"].split(";")[0] == "image/png"


@pytest.mark.parametrize("call", [_case(name, call) for name, call in FAILURES.items()])
def test_validation_error_is_the_same(servers: dict[str, Server], call: Call) -> None:
    theirs, ours = ask_both(servers, call.send)
    assert theirs.status_code == 422, theirs.text
    assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json())


# Where modelaas departs from DEEPaaS 2.6.0 on purpose (../shared/reference/deepaas-api.md, sections
# 2.1 and 4): both answers are pinned here so that neither side changes unnoticed.
FILES_AS_TEXT = Call({"demo-int": "1", "demo-image": "not-a-file"}, files=("demo-audio", "demo-video"))
DEPARTURES = {
    # 4.7: real content negotiation. DEEPaaS validates Accept against the `accept` choices.
    "unproducible-accept": (
        Call({"demo-int": "1"}, headers=(("Accept", "text/html"),)),
        (422, {"accept": ["Must be one of: application/json, image/png."]}),
        (
            406,
            {
                "message": "None of the accepted types (text/html) can be produced; "
                "this model answers application/json, image/png."
            },
        ),
    ),
    "browser-accept": (
        Call({"demo-int": "1"}, headers=(("Accept", "application/json, text/plain, */*"),)),
        (422, {"accept": ["Must be one of: application/json, image/png."]}),
        (200, None),
    ),
    # 2.1: a list may also come as one JSON array.
    "list-as-json-text": (
        Call({"demo-int": "1", "demo-list-of-floats": "[1.5, 2]"}),
        (422, {"demo-list-of-floats": {"0": ["Not a valid number."]}}),
        (200, None),
    ),
    # 4.1/4.9: DEEPaaS hands the text to the model, which fails: a text/plain 500.
    "text-for-a-file": (
        FILES_AS_TEXT,
        (500, None),
        (422, {"demo-image": ["Must be a file upload (multipart/form-data)."]}),
    ),
}


@pytest.mark.parametrize(("call", "deepaas", "modelaas"), list(DEPARTURES.values()), ids=list(DEPARTURES))
def test_documented_departures_from_deepaas(
    servers: dict[str, Server], call: Call, deepaas: tuple[int, Any], modelaas: tuple[int, Any]
) -> None:
    theirs, ours = ask_both(servers, call.send)
    for response, (status, body) in ((theirs, deepaas), (ours, modelaas)):
        assert response.status_code == status, response.text
        if body is not None:
            got = response.json()
            if response is ours and isinstance(got, dict) and "request_id" in got:  # modelaas adds it to errors
                assert got.pop("request_id") == response.headers["x-request-id"]
            assert got == body
    if modelaas[0] == 200:
        assert ours.json()["args"]["demo-int"] == 1


# ------------------------------------------------------------------ /swagger.json

# What clients read in the Swagger 2.0 document (the DEEPaaS web UI builds its form from these keys).
PARAMETER_KEYS = ("name", "in", "type", "required", "default", "enum", "minimum", "maximum", "format", "items")
# apispec's formats for marshmallow's Int and Float: they say nothing a client uses (no bound is checked)
MARSHMALLOW_FORMATS = {"int32", "float"}


def _as_clients_read(param: dict[str, Any]) -> dict[str, Any]:
    view = {key: param[key] for key in PARAMETER_KEYS if key in param}
    if view.get("format") in MARSHMALLOW_FORMATS:
        del view["format"]
    if "items" in view:
        view["items"] = {k: v for k, v in view["items"].items() if not (k == "format" and v in MARSHMALLOW_FORMATS)}
    if param["name"] != "accept":  # ours explains content negotiation at length; the UI leaves accept out
        view["description"] = param.get("description")
    return view


def _template(path: str) -> str:
    """A path with its model name and job id as templates (DEEPaaS writes the model's name literally)."""
    return re.sub(r"/train/\{[a-z]+\}", "/train/{job}", path.replace("/v2/models/demo-app/", "/v2/models/{model}/"))


def test_swagger_documents_agree_where_clients_read(servers: dict[str, Server]) -> None:
    theirs, ours = (r.json() for r in ask_both(servers, lambda base: httpx.get(base + "/swagger.json", timeout=30)))
    assert theirs["swagger"] == ours["swagger"] == "2.0"
    served = {(_template(p), m) for p, item in ours["paths"].items() for m in item if m != "parameters"}
    for path, item in theirs["paths"].items():
        for method in item:
            assert (_template(path), method) in served, (path, method)
    for path in ("/v2/models/demo-app/predict/", "/v2/models/demo-app/train/"):
        their_op, our_op = theirs["paths"][path]["post"], ours["paths"][path]["post"]
        assert [_as_clients_read(p) for p in our_op["parameters"]] == [
            _as_clients_read(p) for p in their_op["parameters"]
        ]
        assert our_op["produces"] == their_op["produces"]
    their_output = theirs["definitions"]["ModelPredictionResponse"]
    our_output = ours["definitions"]["ModelPredictionResponse"]
    assert set(our_output["required"]) == set(their_output["required"])
    assert list(our_output["properties"]) == list(their_output["properties"])
    for name, prop in their_output["properties"].items():
        # DEEPaaS refers to nested schemas ($ref, no type); ours describes them in place, as objects
        if "type" in prop:
            assert our_output["properties"][name]["type"] == prop["type"], name
        if "items" in prop and "type" in prop["items"]:
            assert our_output["properties"][name]["items"]["type"] == prop["items"]["type"], name
