"""Models that accept only ``deepaas.model.v2.wrapper.UploadedFile`` (corpus package compat-uploads).

The model reports every upload it gets (the class, ``name``, ``original_filename``,
``content_type``, and the size and SHA-256 of what it read from ``filename``) and raises
``TypeError`` for any argument that is not an ``UploadedFile``.

Equal under both servers:

* predict with one file: status 200 and the whole JSON answer, which is the expected report.

Where modelaas departs on purpose (docs/guide.md, "What modelaas does differently": DEEPaaS
cannot hand a list of files to its worker process, nor any file to a training):

* predict with a list of files: DEEPaaS answers a text/plain 500; modelaas answers 200 with
  the report of every file, each an ``UploadedFile``;
* train with one file: DEEPaaS's job ends in ``error`` (the aiohttp upload it hands its
  worker is closed by then: "I/O operation on closed file."); modelaas's ends ``done`` with
  the report as its output;
* train with a list of files: DEEPaaS answers the submission with a text/plain 500 (it
  cannot even write the job record); modelaas runs it: ``done`` with the report as output.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from support_deepaas import ask_both, finished, outcome, predict_url, submit, train_both, train_url

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MODEL = "compat-uploads"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)
Upload = tuple[str, str, bytes, str]
"""(form field, client's file name, bytes, content type)"""

IMAGE: Upload = ("image", "dot.png", PNG, "image/png")
BATCH: list[Upload] = [
    ("batch", "notes.txt", "première ligne\n".encode(), "text/plain"),
    ("batch", "weights.bin", bytes(range(256)) * 300, "application/octet-stream"),
]
DATASET: Upload = ("dataset", "train.csv", b"x,y\n1,2\n3,4\n", "text/csv")
EXTRA: list[Upload] = [
    ("extra", "labels.json", b'{"0": "cat"}', "application/json"),
    ("extra", "weights.bin", bytes(range(256)) * 300, "application/octet-stream"),
]


def parts(*uploads: Upload) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, (filename, data, content_type)) for field, filename, data, content_type in uploads]


def report(upload: Upload) -> dict[str, Any]:
    """What the model answers for one ``UploadedFile``."""
    field, filename, data, content_type = upload
    return {
        "class": "UploadedFile",
        "name": field,
        "original_filename": filename,
        "content_type": content_type,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def test_one_file_reaches_predict_as_an_uploaded_file(serve):
    theirs, ours = ask_both(
        serve(MODEL), lambda base: httpx.post(predict_url(base, MODEL), files=parts(IMAGE), timeout=60)
    )
    expected = {"status": "OK", "predictions": {"image": report(IMAGE), "batch": []}}
    assert theirs.status_code == 200, theirs.text
    assert theirs.json() == expected
    assert ours.status_code == 200, ours.text
    assert ours.json() == expected


def test_a_list_of_files_reaches_predict_as_uploaded_files(serve):
    theirs, ours = ask_both(
        serve(MODEL), lambda base: httpx.post(predict_url(base, MODEL), files=parts(IMAGE, *BATCH), timeout=60)
    )
    assert theirs.status_code == 500 and theirs.headers["content-type"].startswith("text/plain"), theirs.text
    assert ours.status_code == 200, ours.text
    assert ours.json() == {"status": "OK", "predictions": {"image": report(IMAGE), "batch": [report(b) for b in BATCH]}}


def test_one_file_reaches_train_as_an_uploaded_file(serve):
    theirs, ours = train_both(serve(MODEL), MODEL, timeout=60, files=parts(DATASET))
    assert theirs["status"] == "error" and theirs["message"], theirs  # the upload is closed, or unpicklable
    assert ours["status"] == "done", outcome(ours)
    assert ours["result"]["output"] == {"dataset": report(DATASET), "extra": []}


def test_a_list_of_files_reaches_train_as_uploaded_files(serve):
    servers = serve(MODEL)
    files = parts(DATASET, *EXTRA)
    theirs = httpx.post(train_url(servers["deepaas"].require(), MODEL), files=files, timeout=60)
    assert theirs.status_code == 500 and theirs.headers["content-type"].startswith("text/plain"), theirs.text
    base = servers["modelaas"].require()
    ours = finished(base, MODEL, submit(base, MODEL, files=files)["uuid"], timeout=60)
    assert ours["status"] == "done", outcome(ours)
    assert ours["result"]["output"] == {"dataset": report(DATASET), "extra": [report(e) for e in EXTRA]}
