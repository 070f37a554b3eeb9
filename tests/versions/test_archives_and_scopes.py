"""Registering from archives (and refusing unsafe ones), who may do what, and the API documents."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from modelaas.tokens import hash_token

MODEL = "/v2/models/versioned"
ADMIN, TRAIN, PREDICT = "admin-token-0123456789abcd", "train-token-0123456789abc", "predict-token-0123456789"
TOKENS = f"admin {hash_token(ADMIN)}\ntrain {hash_token(TRAIN)}\npredict {hash_token(PREDICT)}"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tar_of(members: dict[str, bytes], *, link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tf.addfile(info)
    return buf.getvalue()


@pytest.fixture
def client(make_client):
    return make_client("versioned:Versioned")


def left_behind(settings):
    root = settings.data_dir / "versions" / "versioned"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("v.zip", zip_of({"weights.json": b'{"scale": 3}', "sub/notes.txt": b"hi"})),
        ("v.tar.gz", tar_of({"weights.json": b'{"scale": 3}', "sub/notes.txt": b"hi"})),
    ],
)
def test_an_archive_becomes_a_version(client, settings, filename, content):
    r = client.post(f"{MODEL}/versions/", files={"archive": (filename, content)}, data={"description": "imported"})
    assert r.status_code == 201, r.text
    record = r.json()
    assert record["source"] == {"kind": "archive", "filename": filename} and record["description"] == "imported"
    assert record["files"] == [{"path": "sub/notes.txt", "size": 2}, {"path": "weights.json", "size": 12}]
    folder = settings.data_dir / "versions" / "versioned" / "1"
    assert (folder / "weights.json").read_bytes() == b'{"scale": 3}'
    assert client.get(f"{MODEL}/versions/1").json()["version"] == 1


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (zip_of({"../escape.txt": b"x"}), "outside"),
        (zip_of({"/etc/cron.d/x": b"x"}), "outside"),
        (tar_of({"ok.txt": b"x"}, link="weights.json"), "not a regular file"),
        (tar_of({"a/../../b": b"x"}), "outside"),
        (b"this is not an archive", "not a zip or tar archive"),
        (tar_of({"ok.txt": b"x"})[:40], "cannot be read"),
    ],
)
def test_unsafe_or_broken_archives_are_refused_and_leave_nothing(client, settings, content, says):
    r = client.post(f"{MODEL}/versions/", files={"archive": ("v.tar.gz", content)})
    assert r.status_code == 400, r.text
    assert says in r.json()["message"]
    assert left_behind(settings) == []  # no version, no staging folder
    assert client.get(f"{MODEL}/versions/").json()["versions"] == []


def test_an_archive_larger_than_the_limit_is_refused(make_client, settings):
    c = make_client("versioned:Versioned", client_max_size=4096)
    big = zip_of({"weights.bin": b"\0" * 100_000})  # compresses to far less than it unpacks to
    assert len(big) < 4096
    r = c.post(f"{MODEL}/versions/", files={"archive": ("v.zip", big)})
    assert r.status_code == 400 and "more than 4096 bytes" in r.json()["message"]
    assert left_behind(settings) == []


def test_unknown_models_and_versions(client):
    assert client.get("/v2/models/nope/versions/").status_code == 404
    assert client.post(f"{MODEL}/versions/7/activate").status_code == 404
    assert client.post(f"{MODEL}/versions/x/activate").status_code == 404
    assert client.delete(f"{MODEL}/versions/7").status_code == 404
    assert client.post("/v2/models/nope/reload").status_code == 404


def test_scopes(make_client):
    c = make_client("versioned:Versioned", tokens=TOKENS)
    archive = {"archive": ("v.zip", zip_of({"weights.json": b'{"scale": 2}'}))}
    assert c.get(f"{MODEL}/versions/").status_code == 401
    assert c.post(f"{MODEL}/versions/", files=archive, headers=bearer(PREDICT)).status_code == 403
    assert c.post(f"{MODEL}/versions/", files=archive, headers=bearer(TRAIN)).status_code == 201
    assert c.get(f"{MODEL}/versions/1", headers=bearer(PREDICT)).json()["version"] == 1  # any token reads it
    listing = c.get(f"{MODEL}/versions/", headers=bearer(PREDICT)).json()  # and the list
    assert [v["version"] for v in listing["versions"]] == [1]
    for method, path in (("POST", "versions/1/activate"), ("POST", "reload"), ("DELETE", "versions/1")):
        r = c.request(method, f"{MODEL}/{path}", headers=bearer(TRAIN))
        assert r.status_code == 403, (method, path, r.text)
    assert c.post(f"{MODEL}/versions/1/activate", headers=bearer(ADMIN)).json()["active"] == 1
    assert c.post(f"{MODEL}/reload", headers=bearer(ADMIN)).status_code == 202
    assert c.delete(f"{MODEL}/versions/1", headers=bearer(ADMIN)).status_code == 409  # active


def test_the_api_documents_describe_the_routes(client):
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    assert {"get", "post"} <= set(paths["/v2/models/{model}/versions/"])
    assert "post" in paths["/v2/models/{model}/versions/{version}/activate"]
    assert "post" in paths["/v2/models/{model}/reload"]
    assert {"get", "delete"} <= set(paths["/v2/models/{model}/versions/{version}"])
    assert "VersionRecord" in doc["components"]["schemas"]
    assert client.get("/swagger.json").status_code == 200
