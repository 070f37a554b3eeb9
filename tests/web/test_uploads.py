"""Tests for modelaas.web.uploads: streaming request bodies to disk."""

from __future__ import annotations

import hashlib
import json
import os
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelaas.errors import BadRequest, ClientError, PayloadTooLarge
from modelaas.web.uploads import ClientDisconnected, RequestBody, read_body

pytestmark = pytest.mark.anyio

BOUNDARY = b"----modelaasBoundary7MA4YWxkTrZu0gW"
MULTIPART = "multipart/form-data; boundary=" + BOUNDARY.decode()
MiB = 1024 * 1024
LIMITS = {"max_body": 10 * MiB, "max_parts": 100, "max_field_size": MiB}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def spool_root(tmp_path: Path) -> Path:
    return tmp_path / "data" / "uploads"  # does not exist yet: read_body creates it


class Receiver:
    """A fake ASGI ``receive``: one http.request message per chunk, optionally then a disconnect."""

    def __init__(self, chunks: Iterable[bytes], *, disconnect: bool = False) -> None:
        self._chunks = iter(chunks)
        self._next = next(self._chunks, None)
        self.disconnect = disconnect
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        chunk = self._next
        if chunk is None:
            assert self.disconnect, "receive() called after the last body chunk"
            return {"type": "http.disconnect"}
        self._next = next(self._chunks, None)
        return {"type": "http.request", "body": chunk, "more_body": self._next is not None or self.disconnect}


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def part(name: str, value: bytes, *, filename: str | bytes | None = None, content_type: str | None = None) -> bytes:
    disposition = b'form-data; name="' + name.encode() + b'"'
    if filename is not None:
        raw = filename.encode() if isinstance(filename, str) else filename
        disposition += b'; filename="' + raw + b'"'
    head = b"Content-Disposition: " + disposition + b"\r\n"
    if content_type is not None:
        head += b"Content-Type: " + content_type.encode() + b"\r\n"
    return b"--" + BOUNDARY + b"\r\n" + head + b"\r\n" + value + b"\r\n"


def multipart(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--" + BOUNDARY + b"--\r\n"


def leftovers(root: Path) -> list[Path]:
    return sorted(root.rglob("*")) if root.exists() else []


async def read(
    body: bytes,
    spool_root: Path,
    *,
    content_type: str | None = MULTIPART,
    chunk: int = 64 * 1024,
    content_length: bool = True,
    **limits: int,
) -> RequestBody:
    headers = {}
    if content_type is not None:
        headers["content-type"] = content_type
    if content_length:
        headers["content-length"] = str(len(body))
    options = {**LIMITS, **limits}
    return await read_body(Receiver(split(body, chunk)), headers, spool_root=spool_root, **options)


# ---------------------------------------------------------------- multipart


@pytest.mark.parametrize("chunk", [1, 7, 64 * 1024])
async def test_multipart_fields_and_files(spool_root: Path, chunk: int) -> None:
    image = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n"
    body = multipart(
        part("tag", b"first"),
        part("image", image, filename="cat.png", content_type="image/png"),
        part("tag", "second \u00e9".encode()),
        part("notes", b"plain text\n", filename="notes"),  # no Content-Type, no extension
    )
    result = await read(body, spool_root, chunk=chunk)
    try:
        assert result.fields == [("tag", "first"), ("tag", "second \u00e9")]
        assert result.json is None
        assert [name for name, _ in result.files] == ["image", "notes"]
        (_, png), (_, notes) = result.files
        assert (png.name, png.content_type, png.original_filename) == ("image", "image/png", "cat.png")
        assert (notes.name, notes.content_type, notes.original_filename) == (
            "notes",
            "application/octet-stream",
            "notes",
        )
        assert png.read_bytes() == image
        assert notes.read_bytes() == b"plain text\n"
        assert png.filename.endswith(".png") and os.path.isabs(png.filename)
        assert Path(notes.filename).suffix == ""
        assert result.spool_dir is not None and result.spool_dir.parent == spool_root.resolve()
        assert result.spool_dir.name.startswith("req-")
        assert all(Path(f.filename).parent == result.spool_dir for _, f in result.files)
    finally:
        result.cleanup()


HOSTILE = [
    "../../etc/passwd",
    "/etc/passwd",
    "..",
    "C:\\Windows\\System32\\evil.exe",
    "..\\..\\boot.ini",
    "evil\x00.txt",
    "a" * 4096 + ".txt",
    "r\u00e9sum\u00e9 \u2603.pdf",
    'quote\\";semi.txt',  # an escaped quote and a semicolon inside the quoted filename
]


@pytest.mark.parametrize("filename", HOSTILE, ids=lambda name: repr(name[:24]))
async def test_hostile_filenames_stay_in_the_spool_dir(tmp_path: Path, spool_root: Path, filename: str) -> None:
    result = await read(multipart(part("upload", b"payload", filename=filename)), spool_root)
    try:
        [(_, upload)] = result.files
        expected = 'quote";semi.txt' if filename.startswith("quote") else filename
        assert upload.original_filename == expected
        assert result.spool_dir is not None
        assert upload.path.parent == result.spool_dir
        assert upload.path.resolve().is_relative_to(spool_root.resolve())
        assert len(upload.path.name) <= 32 + 17
        assert upload.read_bytes() == b"payload"
        # Nothing was written anywhere else under tmp_path.
        assert [p for p in tmp_path.rglob("*") if p.is_file()] == [upload.path]
    finally:
        result.cleanup()


@pytest.mark.parametrize(
    ("filename", "suffix"),
    [("photo.JPG", ".JPG"), ("x.tar.gz", ".gz"), ("weird.a_b", ""), ("long." + "a" * 17, ""), ("dot.", "")],
)
async def test_only_short_alphanumeric_extensions_are_kept(spool_root: Path, filename: str, suffix: str) -> None:
    result = await read(multipart(part("f", b"x", filename=filename)), spool_root)
    try:
        [(_, upload)] = result.files
        assert upload.path.name.endswith(suffix)
        assert len(upload.path.name) == 32 + len(suffix)
    finally:
        result.cleanup()


async def test_empty_filename_means_no_file(spool_root: Path) -> None:
    body = multipart(part("a", b"1"), part("upload", b"", filename="", content_type="application/octet-stream"))
    result = await read(body, spool_root)
    assert result.files == []
    assert result.fields == [("a", "1")]
    assert result.spool_dir is None
    assert not spool_root.exists()  # no spool dir is made when no file arrives


async def test_content_length_over_the_cap_is_refused_before_reading(spool_root: Path) -> None:
    receive = Receiver([b"x" * 100])
    headers = {"content-type": MULTIPART, "content-length": "101"}
    with pytest.raises(PayloadTooLarge) as caught:
        await read_body(receive, headers, spool_root=spool_root, max_body=100, max_parts=10, max_field_size=10)
    assert receive.calls == 0
    assert caught.value.status == 413
    assert "100 bytes" in caught.value.message and "--client-max-size" in caught.value.message


async def test_streamed_body_over_the_cap_leaves_nothing(spool_root: Path) -> None:
    body = multipart(part("big", b"z" * 20_000, filename="big.bin"))
    with pytest.raises(PayloadTooLarge, match="10000 bytes"):
        await read(body, spool_root, chunk=1024, content_length=False, max_body=10_000)
    assert spool_root.exists()  # the file had been started ...
    assert leftovers(spool_root) == []  # ... and was removed with its spool dir


async def test_lying_content_length_is_still_capped(spool_root: Path) -> None:
    headers = {"content-type": "text/plain", "content-length": "10"}
    receive = Receiver([b"x" * 60, b"x" * 60])
    with pytest.raises(PayloadTooLarge):
        await read_body(receive, headers, spool_root=spool_root, max_body=100, max_parts=10, max_field_size=10)


async def test_too_many_parts(spool_root: Path) -> None:
    body = multipart(part("a", b"1"), part("f", b"data", filename="f.txt"), part("c", b"3"))
    with pytest.raises(BadRequest, match=r"(?i)too many parts.*limit 2"):
        await read(body, spool_root, max_parts=2)
    assert leftovers(spool_root) == []


async def test_field_size_limit(spool_root: Path) -> None:
    result = await read(multipart(part("ok", b"x" * 10)), spool_root, max_field_size=10)
    assert result.fields == [("ok", "x" * 10)]
    with pytest.raises(PayloadTooLarge, match=r"'big'.*10 bytes"):
        await read(multipart(part("big", b"x" * 11)), spool_root, chunk=3, max_field_size=10)


async def test_file_parts_are_not_bound_by_the_field_size(spool_root: Path) -> None:
    result = await read(multipart(part("f", b"x" * 1000, filename="f.bin")), spool_root, max_field_size=10)
    try:
        assert result.files[0][1].size == 1000
    finally:
        result.cleanup()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", multipart(part("a", b"1"))),  # no boundary parameter
        (MULTIPART, multipart(part("a", b"1")).replace(BOUNDARY, b"----somethingElse", 1)),  # wrong boundary
        (MULTIPART, multipart(part("a", b"1"))[:-20]),  # truncated: no closing boundary
        (MULTIPART, b"--" + BOUNDARY + b"\r\nno colon here\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n"),  # bad header
        ("multipart/form-data; boundary=" + "b" * 300, b"x"),  # boundary longer than python_multipart allows
    ],
    ids=["no-boundary", "wrong-boundary", "truncated", "bad-header", "long-boundary"],
)
async def test_malformed_multipart_is_a_bad_request(spool_root: Path, content_type: str, body: bytes) -> None:
    with pytest.raises(BadRequest, match=r"(?i)malformed"):
        await read(body, spool_root, content_type=content_type)
    assert leftovers(spool_root) == []


async def test_truncated_multipart_file_leaves_nothing(spool_root: Path) -> None:
    body = multipart(part("f", b"y" * 5000, filename="f.bin"))[:3000]
    with pytest.raises(BadRequest, match="closing boundary"):
        await read(body, spool_root, chunk=512)
    assert leftovers(spool_root) == []


async def test_empty_multipart_body_is_empty(spool_root: Path) -> None:
    result = await read(b"", spool_root)
    assert (result.fields, result.files, result.spool_dir) == ([], [], None)


async def test_closing_boundary_only(spool_root: Path) -> None:
    result = await read(multipart(), spool_root)
    assert (result.fields, result.files) == ([], [])


async def test_disconnect_midway(spool_root: Path) -> None:
    body = multipart(part("a", b"1"), part("f", b"w" * 10_000, filename="f.bin"))
    receive = Receiver(split(body[:6000], 1000), disconnect=True)
    headers = {"content-type": MULTIPART, "content-length": str(len(body))}
    with pytest.raises(ClientDisconnected) as caught:
        await read_body(receive, headers, spool_root=spool_root, max_body=MiB, max_parts=10, max_field_size=MiB)
    assert isinstance(caught.value, ClientError) and not isinstance(caught.value, BadRequest)
    assert caught.value.status == 400
    assert caught.value.message == "Client disconnected before the body was complete."
    assert spool_root.exists()
    assert leftovers(spool_root) == []


@pytest.mark.parametrize("error", [OSError("connection reset"), KeyboardInterrupt()])
async def test_any_error_while_reading_leaves_nothing(spool_root: Path, error: BaseException) -> None:
    body = multipart(part("f", b"v" * 10_000, filename="f.bin"))
    chunks = split(body[:5000], 1000)

    async def receive() -> dict[str, Any]:
        if not chunks:
            raise error
        return {"type": "http.request", "body": chunks.pop(0), "more_body": True}

    with pytest.raises(type(error)):
        await read_body(receive, {"content-type": MULTIPART}, spool_root=spool_root, **LIMITS)
    assert spool_root.exists()
    assert leftovers(spool_root) == []


async def test_cleanup_removes_everything_and_is_idempotent(spool_root: Path) -> None:
    body = multipart(part("a", b"1", filename="a.txt"), part("b", b"2", filename="b.txt"))
    result = await read(body, spool_root)
    paths = [upload.path for _, upload in result.files]
    assert all(p.is_file() for p in paths)
    result.cleanup()
    assert not any(p.exists() for p in paths)
    assert result.spool_dir is not None and not result.spool_dir.exists()
    assert leftovers(spool_root) == []
    result.cleanup()  # again: no error
    RequestBody().cleanup()  # nothing to clean: no error


@pytest.mark.slow
async def test_large_file_streams_with_bounded_memory(spool_root: Path) -> None:
    chunk_size, chunks = 64 * 1024, 1024  # 64 MiB
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        yield b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="blob"; filename="blob.bin"\r\n\r\n'
        for i in range(chunks):
            data = i.to_bytes(4, "big") * (chunk_size // 4)
            digest.update(data)
            yield data
        yield b"\r\n--" + BOUNDARY + b"--\r\n"

    headers = {"content-type": MULTIPART}
    tracemalloc.start()
    try:
        result = await read_body(
            Receiver(body()), headers, spool_root=spool_root, max_body=128 * MiB, max_parts=10, max_field_size=MiB
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    try:
        assert peak < 8 * MiB, f"peak traced memory {peak / MiB:.1f} MiB"
        [(_, upload)] = result.files
        assert upload.size == chunk_size * chunks
        on_disk = hashlib.sha256()
        with upload.open() as fh:
            while block := fh.read(MiB):
                on_disk.update(block)
        assert on_disk.hexdigest() == digest.hexdigest()
    finally:
        result.cleanup()


# ---------------------------------------------------------------- url-encoded

FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("chunk", [1, 5, 1024])
async def test_urlencoded_keeps_order_and_repeats(spool_root: Path, chunk: int) -> None:
    body = b"a=1&b=hello+world&a=%C3%A9%26&empty=&flag&&c=x%3Dy"
    result = await read(body, spool_root, content_type=FORM + "; charset=UTF-8", chunk=chunk)
    assert result.fields == [
        ("a", "1"),
        ("b", "hello world"),
        ("a", "\u00e9&"),
        ("empty", ""),
        ("flag", ""),
        ("c", "x=y"),
    ]
    assert result.files == [] and result.spool_dir is None


async def test_urlencoded_limits(spool_root: Path) -> None:
    with pytest.raises(PayloadTooLarge, match="20 bytes"):
        await read(b"a=" + b"x" * 19, spool_root, content_type=FORM, max_field_size=20)
    with pytest.raises(BadRequest, match="limit 3"):
        await read(b"a=1&b=2&c=3&d=4", spool_root, content_type=FORM, max_parts=3)
    result = await read(b"a=1&b=2&c=3", spool_root, content_type=FORM, max_parts=3)
    assert len(result.fields) == 3


# ---------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/vnd.api+json"]
)
async def test_json(spool_root: Path, content_type: str) -> None:
    doc = {"inputs": [1, 2.5, "\u00e9"], "nested": {"ok": True}}
    result = await read(json.dumps(doc).encode(), spool_root, content_type=content_type, chunk=4)
    assert result.json == doc
    assert (result.fields, result.files, result.spool_dir) == ([], [], None)


async def test_empty_json_body_is_none(spool_root: Path) -> None:
    assert (await read(b"", spool_root, content_type="application/json")).json is None


@pytest.mark.parametrize("body", [b"{nope", b'{"a": 1} trailing', b'"\xff\xfe"', b"[" * 200_000 + b"]" * 200_000])
async def test_invalid_json_is_a_bad_request(spool_root: Path, body: bytes) -> None:
    with pytest.raises(BadRequest, match=r"^Request body is not valid JSON"):
        await read(body, spool_root, content_type="application/json")


async def test_json_too_large(spool_root: Path) -> None:
    with pytest.raises(PayloadTooLarge, match="--max-field-size"):
        await read(b'{"a": "' + b"x" * 100 + b'"}', spool_root, content_type="application/json", max_field_size=64)


# ---------------------------------------------------------------- other content types


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/octet-stream"])
async def test_other_bodies_are_drained_and_ignored(spool_root: Path, content_type: str | None) -> None:
    receive = Receiver(split(b"q" * 5000, 1000))
    headers = {"content-type": content_type} if content_type else {}
    result = await read_body(receive, headers, spool_root=spool_root, max_body=5000, max_parts=1, max_field_size=1)
    assert receive.calls == 5
    assert (result.fields, result.files, result.json, result.spool_dir) == ([], [], None, None)
    with pytest.raises(PayloadTooLarge):
        await read(b"q" * 5001, spool_root, content_type=content_type, content_length=False, chunk=1000, max_body=5000)


async def test_invalid_content_length(spool_root: Path) -> None:
    with pytest.raises(BadRequest, match="Content-Length"):
        await read_body(
            Receiver([b""]), {"content-length": "ten"}, spool_root=spool_root, max_body=1, max_parts=1, max_field_size=1
        )
