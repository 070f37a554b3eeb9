"""The upload checks catch what they guard against: each shown failing with its defence removed.

The same checks run with the defences in place (they pass) and with one defence taken out
(they must fail), so a check that could never fail would be noticed here.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

import pytest

from modelaas import Model
from modelaas.model.adapters import TypedAdapter
from modelaas.model.files import File
from modelaas.web import uploads

URL = "/v2/models/size-only/predict/"


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def confined(seen: list[str], spool: Path) -> bool:
    """The check: every upload the model was handed lay inside the upload spool."""
    return bool(seen) and all(Path(os.path.abspath(p)).is_relative_to(spool.resolve()) for p in seen)


def no_leftovers(data_dir: Path) -> bool:
    """The check: no uploaded file is left in the spool once the request ended."""
    return not files_under(data_dir / "uploads")


def unsafe_open(self, original: str) -> None:
    """The defence removed: the client's file name used as the path (what must never happen)."""
    if self.body.spool_dir is None:
        self.spool_root.mkdir(parents=True, exist_ok=True)
        self.body.spool_dir = Path(tempfile.mkdtemp(dir=self.spool_root, prefix="req-"))
    path = os.path.normpath(os.path.join(self.body.spool_dir, original))
    self.out = open(path, "xb")  # noqa: SIM115
    self.file = File(self.name, path, "application/octet-stream", original)


@pytest.mark.parametrize("defended", [True, False])
def test_hostile_file_names_stay_in_the_spool(make_client, settings, tmp_path, monkeypatch, defended):
    seen: list[str] = []

    class Recorder(Model):
        def predict(self, data: File) -> dict:
            seen.append(data.filename)
            return {}

    if not defended:
        monkeypatch.setattr(uploads._Multipart, "_open", unsafe_open)
    client = make_client(TypedAdapter("recorder", Recorder()))
    hostile = "../" * 12 + str(tmp_path).lstrip("/") + f"/escaped-{secrets.token_hex(4)}.txt"
    assert client.post("/v2/models/recorder/predict/", files={"data": (hostile, b"payload")}).status_code == 200
    assert confined(seen, settings.upload_dir) is defended


@pytest.mark.parametrize("defended", [True, False])
def test_uploads_are_deleted_after_the_request(make_client, settings, monkeypatch, defended):
    if not defended:
        monkeypatch.setattr(uploads.RequestBody, "cleanup", lambda self: None)
    client = make_client("size_only:SizeOnly")
    assert client.post(URL, files={"data": ("a.bin", b"x" * 1000)}).json()["predictions"] == {"size": 1000}
    assert no_leftovers(settings.data_dir) is defended


@pytest.mark.anyio
@pytest.mark.parametrize("defended", [True, False])
async def test_aborted_uploads_leave_nothing(tmp_path, monkeypatch, defended):
    if not defended:
        monkeypatch.setattr(uploads.RequestBody, "cleanup", lambda self: None)
    boundary = "b0undary"
    chunks = [
        {
            "type": "http.request",
            "body": f'--{boundary}\r\nContent-Disposition: form-data; name="data"; filename="a.bin"\r\n\r\n'.encode()
            + b"x" * 5000,
            "more_body": True,
        },
        {"type": "http.disconnect"},
    ]

    async def receive():
        return chunks.pop(0)

    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    with pytest.raises(uploads.ClientDisconnected):
        await uploads.read_body(
            receive, headers, spool_root=tmp_path / "uploads", max_body=10**6, max_parts=10, max_field_size=10**5
        )
    assert no_leftovers(tmp_path) is defended


@pytest.fixture
def anyio_backend():
    return "asyncio"
