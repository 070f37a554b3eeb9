"""A prediction's answer, independent of any transport: JSON data or raw media."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, replace
from typing import Any

from modelaas.errors import OutputInvalid
from modelaas.model.adapters import ModelAdapter
from modelaas.model.jsonable import to_jsonable
from modelaas.model.outputs import file_path_of
from modelaas.runtime.media import JSON_MEDIA, is_json_media


@dataclass(frozen=True)
class Answer:
    """What to send back: ``json`` data, or ``content`` bytes / a local ``path`` of ``media_type``."""

    media_type: str = JSON_MEDIA
    json: Any = None
    content: bytes | None = None
    path: str | None = None
    filename: str | None = None

    @property
    def is_json(self) -> bool:
        return self.content is None and self.path is None


def render(adapter: ModelAdapter, output: Any, media_type: str | None, *, envelope: bool = True) -> Answer:
    """Shape a model's predict output per the DEEPaaS contract.

    A non-JSON ``media_type`` answers the output raw; else a declared schema validates the
    output, which is answered as is; else ``{"status": "OK", "predictions": output}``.
    A raw answer never carries a wildcard type: for an offered ``image/*`` it is the type of
    the bytes when known (file name, leading bytes), else ``application/octet-stream``.
    """
    if media_type and not is_json_media(media_type, wildcard=True):
        answer = _raw(output, media_type)
        if "*" in answer.media_type:
            answer = replace(answer, media_type=sniff(answer) or "application/octet-stream")
        return answer
    if adapter.output_schema is not None:
        return Answer(json=adapter.output_schema.validate(output))
    data = to_jsonable(output)
    return Answer(json={"status": "OK", "predictions": data} if envelope else data)


def _raw(output: Any, media_type: str) -> Answer:
    if isinstance(output, str):
        return Answer(media_type=media_type, content=output.encode("utf-8"))
    if isinstance(output, (bytes, bytearray, memoryview)):
        return Answer(media_type=media_type, content=bytes(output))
    if isinstance(output, io.BytesIO):  # a name it carries is the file name to give the client
        return Answer(media_type=media_type, content=output.getvalue(), filename=_given_name(output))
    path = file_path_of(output)
    if path is None and hasattr(output, "read"):
        name = getattr(output, "name", None)
        if isinstance(name, str) and os.path.isfile(name):
            path = name
            _close(output)
        else:
            data = output.read()
            _close(output)
            content = data if isinstance(data, bytes) else str(data).encode()
            return Answer(media_type=media_type, content=content, filename=_given_name(output))
    if path is not None:
        if not os.path.isfile(path):
            raise OutputInvalid(f"The model returned a file that does not exist: {os.path.basename(path)}")
        return Answer(media_type=media_type, path=path, filename=os.path.basename(path))
    raise OutputInvalid(
        f"The model returned a {type(output).__name__} for {media_type}; expected str, bytes, a file or a path."
    )


def _given_name(obj: Any) -> str | None:
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name.strip():
        return None
    return os.path.basename(name.replace("\\", "/")) or None


_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"WEBP", 8, "image/webp"),
    (b"%PDF-", 0, "application/pdf"),
    (b"WAVE", 8, "audio/wav"),
    (b"fLaC", 0, "audio/flac"),
    (b"OggS", 0, "audio/ogg"),
    (b"ID3", 0, "audio/mpeg"),
    (b"ftyp", 4, "video/mp4"),
    (b"PK\x03\x04", 0, "application/zip"),
)
"""Leading bytes of common model outputs (images, audio, reports): enough to name what a
model answered for an offered wildcard; anything else is ``application/octet-stream``."""


def sniff(answer: Answer) -> str | None:
    """The type of a raw answer's bytes: from its file name, else from its first bytes."""
    import mimetypes

    if answer.filename:
        guessed = mimetypes.guess_type(answer.filename)[0]
        if guessed:
            return guessed
    head = answer.content[:16] if answer.content is not None else b""
    if answer.path is not None:
        with open(answer.path, "rb") as fh:
            head = fh.read(16)
    for signature, offset, media_type in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return media_type
    return None


def _close(obj: Any) -> None:
    close = getattr(obj, "close", None)
    if callable(close):
        close()
