"""v1 models (``deepaas.model``) on the ``/v1`` routes of DEEPaaS 1.3.0 and of modelaas (corpus package compat-v1).

One DEEPaaS 1.3.0 (the last release with the ``/v1`` routes) and one modelaas serve every
model of ``tests/compat/packages-v1``; modelaas runs with ``--pass-unresolved-urls``, as the
URLs sent name ``.invalid`` hosts that the models only parse (see the ``v1_servers`` fixture).
The models are written as 2019 models were, for DEEPaaS 0.5 to 1.3: ``predict_data(args)``
and ``predict_url(args)`` take one dict, and a ``predict_file`` stub is never called; one
(compat-v1-seed) is written from the seed document instead.

Equal under both servers (status and JSON): ``GET /v1/`` and ``GET /v1/models/<m>``; a
prediction with every test argument sent, whether the model reads the upload with
``read()``, opens the upload object itself with PIL or ``save()``\\ s it to a path, and
whether it takes ``(args)``, ``(*args)`` or ``(*args, **kwargs)``; ``args["urls"]`` as a
list; ``PUT /v1/models/<m>/train`` with every argument sent; 501 for a function the model
lacks or that raises ``NotImplementedError``; 400 for neither or both of ``data`` and
``url`` (DEEPaaS answers its errors as text, modelaas as JSON).

Where DEEPaaS 1.3.0 differs, pinned here with what modelaas does and why:

* **Argument defaults.** DEEPaaS 1.3.0 declares each test and train argument as
  ``fields.Str(default=...)``; in marshmallow 3 ``default`` is used when dumping only, and
  webargs 5 loads the request through the schema, so an argument the client leaves out is
  missing from the dict and a model that indexes it (``args["top_k"]``, as 2019 models do)
  fails with 500. modelaas applies the declared defaults: the model declared them, DEEPaaS
  0.5 applied them (flask-restplus), and DEEPaaS 1.3.0 applies them itself on its ``/v2``
  view of the same model (``missing=``). A client of 1.3.0 had to send every argument, and
  still gets the same answers.
* **The upload's content type.** DEEPaaS 1.3.0 rebuilds the ``FileStorage`` from the stream
  and the file name only, so ``content_type`` is None; modelaas gives the client's type.
* **Several ``data`` parts.** DEEPaaS 1.3.0 hands the model the first only (its code says
  "only handling one file"); modelaas hands over all of them, in order, in ``args["files"]``.
* **Seed-form models.** DEEPaaS 1.3.0 calls ``predict_data(args)`` (501 when the model has
  none) and ``predict_url(args)`` with the dict in place of the URL (500); modelaas calls
  ``predict_file(path, **test args)`` and ``predict_url(url, *test args)`` as the seed says.
* **The ``/v2`` view.** DEEPaaS 1.3.0 lists v1 models on ``/v2`` when no v2 model is
  installed, but answers their predictions 501 (no ``predict()``) and fails their trainings
  (``train(**args)``); modelaas serves them there as on ``/v1``.
* **The listing's path.** DEEPaaS 1.3.0 serves ``GET /v1/models`` (``/v1/models/`` is 404);
  modelaas serves ``/v1/models/`` and redirects ``/v1/models`` there: a known failure below.
"""

from __future__ import annotations

import hashlib
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from support_deepaas import Server, ask_both, outcome, parse_freeze, train_both

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MODELS = ["compat-v1-batch", "compat-v1-classifier", "compat-v1-detector", "compat-v1-inspector", "compat-v1-seed"]
URLS = ["http://one.invalid/x/cat.jpg", "https://two.invalid/dog.png?size=2"]


def _png(width: int, height: int, colour: tuple[int, int, int], box: tuple[int, int, int, int] | None = None) -> bytes:
    """A PNG of ``colour`` inside ``box`` (left, top, right, bottom; the whole image if None), black elsewhere."""
    left, top, right, bottom = box or (0, 0, width, height)

    def pixel(x: int, y: int) -> bytes:
        return bytes(colour if left <= x < right and top <= y < bottom else (0, 0, 0))

    rows = b"".join(b"\x00" + b"".join(pixel(x, y) for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n"
    for kind, data in [(b"IHDR", header), (b"IDAT", zlib.compress(rows)), (b"IEND", b"")]:
        out += struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return out


IMAGE = _png(8, 6, (200, 30, 10))
SCENE = _png(10, 10, (255, 255, 255), box=(2, 3, 7, 9))
SHA = hashlib.sha256(IMAGE).hexdigest()


def _upload(name: str = "pic.png", content: bytes = IMAGE) -> dict[str, Any]:
    return {"data": (name, content, "image/png")}


def _predict(model: str, **kwargs: Any) -> Callable[[str], httpx.Response]:
    return lambda base: httpx.post(f"{base}/v1/models/{model}/predict", timeout=60, **kwargs)


def _train(model: str, **kwargs: Any) -> Callable[[str], httpx.Response]:
    return lambda base: httpx.put(f"{base}/v1/models/{model}/train", timeout=120, **kwargs)


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_installing_modelaas_changes_no_package_deepaas_installed(corpus_venv_v1: Path) -> None:
    before = parse_freeze(corpus_venv_v1 / "freeze-deepaas.txt")
    after = parse_freeze(corpus_venv_v1 / "freeze-modelaas.txt")
    pinned = {name: before.get(name) for name in ("deepaas", "webargs", "marshmallow", "aiohttp")}
    aiohttp = "3.8.6" if sys.version_info < (3, 12) else "3.10.11"
    assert pinned == {"deepaas": "1.3.0", "webargs": "5.5.3", "marshmallow": "3.10.0", "aiohttp": aiohttp}
    assert {name: after.get(name) for name in before} == before


def test_version_and_model_metadata(v1_servers: dict[str, Server]) -> None:
    theirs, ours = ask_both(v1_servers, lambda base: httpx.get(f"{base}/v1/", timeout=30))
    assert _ok(theirs) == {
        "version": "deprecated",
        "id": "v1",
        "links": [{"rel": "self", "type": "application/json", "href": "/v1/"}],
    }
    assert _ok(ours) == theirs.json()
    for model in MODELS:
        path = f"/v1/models/{model}"
        theirs, ours = ask_both(v1_servers, lambda base, path=path: httpx.get(base + path, timeout=30))
        assert _ok(theirs)["links"] == [{"rel": "self", "href": f"/v1/models/{model}"}]
        assert _ok(ours) == theirs.json()


def test_the_model_listing(v1_servers: dict[str, Server]) -> None:
    theirs = httpx.get(v1_servers["deepaas"].require() + "/v1/models", timeout=30)
    assert [entry["id"] for entry in _ok(theirs)["models"]] == MODELS
    assert httpx.get(v1_servers["deepaas"].require() + "/v1/models/", timeout=30).status_code == 404
    ours = httpx.get(v1_servers["modelaas"].require() + "/v1/models/", timeout=30)
    assert _ok(ours) == theirs.json()


def test_the_model_listing_at_the_path_deepaas_1_3_serves(v1_servers: dict[str, Server]) -> None:
    theirs, ours = ask_both(v1_servers, lambda base: httpx.get(f"{base}/v1/models", timeout=30))
    assert (ours.status_code, ours.headers.get("location")) == (200, None)
    assert ours.json() == _ok(theirs)


@pytest.mark.parametrize("where", ["form", "query"])
def test_dict_form_reads_the_upload_and_every_argument_sent(v1_servers: dict[str, Server], where: str) -> None:
    sent = {"threshold": "0.7", "top_k": "1"}
    fields = {"data": sent} if where == "form" else {"params": sent}
    theirs, ours = ask_both(v1_servers, _predict("compat-v1-inspector", files=_upload(), **fields))
    expected = {
        "keys": ["data", "files", "threshold", "top_k", "urls"],
        "files": 1,
        "filenames": ["pic.png"],
        "data_filename": "pic.png",
        "bytes": len(IMAGE),
        "sha256": SHA,
        "urls": None,
        "args": sent,
    }
    assert _ok(theirs) == {**expected, "content_type": None}
    assert _ok(ours) == {**expected, "content_type": "image/png"}


def test_an_argument_left_out_holds_its_default_under_modelaas_only(v1_servers: dict[str, Server]) -> None:
    theirs, ours = ask_both(v1_servers, _predict("compat-v1-inspector", files=_upload(), data={"threshold": "0.7"}))
    assert _ok(theirs)["keys"] == ["data", "files", "threshold", "urls"]
    assert theirs.json()["args"] == {"threshold": "0.7"}
    assert _ok(ours)["keys"] == ["data", "files", "threshold", "top_k", "urls"]
    assert ours.json()["args"] == {"threshold": "0.7", "top_k": "3"}
    # a model that indexes the argument: KeyError under DEEPaaS 1.3.0; under modelaas the answer
    # DEEPaaS gives when the client sends the declared default itself
    theirs, ours = ask_both(v1_servers, _predict("compat-v1-classifier", files=_upload(), data={"threshold": "0.1"}))
    assert theirs.status_code == 500
    with_default = httpx.post(
        v1_servers["deepaas"].require() + "/v1/models/compat-v1-classifier/predict",
        files=_upload(),
        data={"threshold": "0.1", "top_k": "2"},
        timeout=60,
    )
    assert _ok(ours) == _ok(with_default)


def test_pil_opens_the_upload_and_save_writes_it_to_a_path(v1_servers: dict[str, Server]) -> None:
    sent = {"threshold": "0.1", "top_k": "2"}
    theirs, ours = ask_both(v1_servers, _predict("compat-v1-classifier", files=_upload(), data=sent))
    assert _ok(theirs) == {
        "status": "ok",
        "predictions": [{"label": "red", "probability": 0.833333}, {"label": "green", "probability": 0.125}],
        "image": {"format": "PNG", "mode": "RGB", "size": [8, 6]},
    }
    assert _ok(ours) == theirs.json()
    theirs, ours = ask_both(v1_servers, _predict("compat-v1-detector", files=_upload("scene.png", SCENE)))
    assert _ok(theirs) == {
        "file": "scene.png",
        "saved_bytes": len(SCENE),
        "size": [10, 10],
        "detections": [{"label": "object", "box": [2, 3, 7, 9], "score": 0.3}],
    }
    assert _ok(ours) == theirs.json()


def test_every_url_in_one_list(v1_servers: dict[str, Server]) -> None:
    params = [("url", url) for url in URLS]
    theirs, ours = ask_both(v1_servers, _predict("compat-v1-classifier", params=params))
    assert _ok(theirs) == {
        "status": "ok",
        "predictions": [{"url": URLS[0], "file": "cat.jpg"}, {"url": URLS[1], "file": "dog.png"}],
    }
    assert _ok(ours) == theirs.json()
    theirs, ours = ask_both(v1_servers, _predict("compat-v1-inspector", params=[*params, ("threshold", "0.9")]))
    assert (_ok(theirs)["urls"], theirs.json()["url"]) == (URLS, URLS)
    assert {**_ok(ours), "keys": None, "args": None} == {**theirs.json(), "keys": None, "args": None}


def test_a_model_taking_star_args_and_keywords_gets_the_dict(v1_servers: dict[str, Server]) -> None:
    theirs, ours = ask_both(v1_servers, _predict("compat-v1-batch", files=_upload("a.png")))
    expected = {"status": "ok", "files": [{"name": "a.png", "bytes": len(IMAGE)}], "keywords": []}
    assert _ok(theirs) == expected
    assert _ok(ours) == expected
    theirs, ours = ask_both(v1_servers, _predict("compat-v1-batch", params=[("url", url) for url in URLS]))
    assert _ok(theirs) == {"status": "ok", "hosts": ["one.invalid", "two.invalid"], "keywords": []}
    assert _ok(ours) == theirs.json()


def test_several_data_parts_reach_the_model_under_modelaas_only(v1_servers: dict[str, Server]) -> None:
    parts = [("data", ("a.png", IMAGE, "image/png")), ("data", ("b.txt", b"hello", "text/plain"))]
    theirs, ours = ask_both(v1_servers, _predict("compat-v1-batch", files=parts))
    first = {"name": "a.png", "bytes": len(IMAGE)}
    assert _ok(theirs)["files"] == [first]
    assert _ok(ours)["files"] == [first, {"name": "b.txt", "bytes": 5}]


def test_neither_or_both_of_data_and_url(v1_servers: dict[str, Server]) -> None:
    for kwargs in ({}, {"files": _upload(), "params": {"url": URLS[0]}}):
        theirs, ours = ask_both(v1_servers, _predict("compat-v1-inspector", **kwargs))
        assert (theirs.status_code, theirs.text) == (400, "400: You must provide either 'url' or 'data' in the payload")
        assert ours.status_code == 400, ours.text
        assert ours.json()["message"].startswith("You must provide either 'url' or 'data' in the payload")


def test_what_the_model_does_not_implement(v1_servers: dict[str, Server]) -> None:
    for send in (_predict("compat-v1-detector", params={"url": URLS[0]}), _train("compat-v1-detector")):
        theirs, ours = ask_both(v1_servers, send)
        assert theirs.status_code == 501, theirs.text
        assert ours.status_code == 501, ours.text


def test_training(v1_servers: dict[str, Server]) -> None:
    sent = {"num_epochs": "4", "use_augmentation": "true"}
    theirs, ours = ask_both(v1_servers, _train("compat-v1-classifier", params=sent))
    assert _ok(theirs) == {"status": "done", "epochs": 4, "augmentation": True}
    assert _ok(ours) == theirs.json()
    # an argument left out: KeyError under DEEPaaS 1.3.0, its default under modelaas
    theirs, ours = ask_both(v1_servers, _train("compat-v1-classifier", params={"num_epochs": "4"}))
    assert theirs.status_code == 500
    assert _ok(ours) == {"status": "done", "epochs": 4, "augmentation": False}
    theirs, ours = ask_both(v1_servers, _train("compat-v1-inspector", params={"epochs": "4"}))
    assert _ok(theirs) == {"keys": ["epochs"], "args": {"epochs": "4"}}
    assert _ok(ours) == {"keys": ["epochs", "lr"], "args": {"epochs": "4", "lr": "0.01"}}


def test_a_seed_form_model_is_served_as_the_seed_describes_by_modelaas_only(v1_servers: dict[str, Server]) -> None:
    theirs, ours = ask_both(v1_servers, _predict("compat-v1-seed", files=_upload(), data={"scale": "2"}))
    assert theirs.status_code == 501, theirs.text  # it has no predict_data
    assert theirs.text == "501: Not implemented by underlying model (loaded 'compat-v1-seed')"
    assert _ok(ours) == {"bytes": 2 * len(IMAGE), "sha256": SHA, "options": ["scale"]}
    theirs, ours = ask_both(v1_servers, _predict("compat-v1-seed", params={"url": URLS[0]}))
    assert theirs.status_code == 500  # the dict handed over as the URL
    assert _ok(ours) == {"host": "one.invalid", "path": "/x/cat.jpg", "extra": ["1"]}
    theirs, ours = ask_both(v1_servers, _train("compat-v1-seed", params={"steps": "7"}))
    assert _ok(theirs) == {"steps": 7}
    assert _ok(ours) == theirs.json()


def test_the_v2_view_of_a_v1_model(v1_servers: dict[str, Server]) -> None:
    theirs, ours = ask_both(v1_servers, lambda base: httpx.get(f"{base}/v2/models/", timeout=30))
    assert [entry["id"] for entry in _ok(theirs)["models"]] == MODELS
    assert _ok(ours) == theirs.json()
    url = "/v2/models/compat-v1-inspector/predict/"
    sent = {"threshold": "0.7", "top_k": "1"}
    theirs, ours = ask_both(v1_servers, lambda base: httpx.post(base + url, files=_upload(), data=sent, timeout=60))
    assert theirs.status_code == 501, theirs.text
    on_v1 = _ok(_predict("compat-v1-inspector", files=_upload(), data=sent)(v1_servers["modelaas"].require()))
    assert _ok(ours) == {"status": "OK", "predictions": on_v1}
    theirs, ours = train_both(v1_servers, "compat-v1-inspector", timeout=60, params={"epochs": "4"})
    assert theirs["status"] == "error", outcome(theirs)
    assert "unexpected keyword argument 'epochs'" in theirs["message"]
    assert ours["status"] == "done", outcome(ours)
    assert ours["result"]["output"] == {"keys": ["epochs", "lr"], "args": {"epochs": "4", "lr": "0.01"}}
