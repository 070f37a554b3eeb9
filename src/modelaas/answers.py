"""A prediction's answer, independent of any transport: JSON data or raw media."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

from modelaas.errors import OutputInvalid
from modelaas.model.adapters import JSON_MEDIA, ModelAdapter
from modelaas.model.outputs import file_path_of, to_jsonable


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
    """
    if media_type and not _is_json(media_type):
        return _raw(output, media_type)
    if adapter.output_schema is not None:
        return Answer(json=adapter.output_schema.validate(output))
    data = to_jsonable(output)
    return Answer(json={"status": "OK", "predictions": data} if envelope else data)


def _is_json(media_type: str) -> bool:
    base = media_type.split(";")[0].strip().lower()
    return base in (JSON_MEDIA, "*/*") or base.endswith("+json")


def _raw(output: Any, media_type: str) -> Answer:
    if isinstance(output, str):
        return Answer(media_type=media_type, content=output.encode("utf-8"))
    if isinstance(output, (bytes, bytearray, memoryview)):
        return Answer(media_type=media_type, content=bytes(output))
    if isinstance(output, io.BytesIO):
        return Answer(media_type=media_type, content=output.getvalue())
    path = file_path_of(output)
    if path is None and hasattr(output, "read"):
        name = getattr(output, "name", None)
        if isinstance(name, str) and os.path.isfile(name):
            path = name
            _close(output)
        else:
            data = output.read()
            _close(output)
            return Answer(media_type=media_type, content=data if isinstance(data, bytes) else str(data).encode())
    if path is not None:
        if not os.path.isfile(path):
            raise OutputInvalid(f"The model returned a file that does not exist: {os.path.basename(path)}")
        return Answer(media_type=media_type, path=path, filename=os.path.basename(path))
    raise OutputInvalid(
        f"The model returned a {type(output).__name__} for {media_type}; expected str, bytes, a file or a path."
    )


def _close(obj: Any) -> None:
    close = getattr(obj, "close", None)
    if callable(close):
        close()
