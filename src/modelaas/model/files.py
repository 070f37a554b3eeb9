"""The object a model receives for an uploaded file."""

from __future__ import annotations

from pathlib import Path
from typing import IO, NamedTuple


class File(NamedTuple):
    """An uploaded file, already on local disk.

    The same four attributes as DEEPaaS's ``UploadedFile`` (so existing models that read
    ``arg.filename`` keep working), plus conveniences for typed models. The file lives in
    the server's upload spool and is deleted when the request ends.
    """

    name: str
    """The form field the file was sent in."""
    filename: str
    """Path of the uploaded file on local disk."""
    content_type: str
    """The content type the client declared."""
    original_filename: str
    """The client's own name for the file: data only, never used as a path."""

    @property
    def path(self) -> Path:
        return Path(self.filename)

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def open(self, mode: str = "rb") -> IO[bytes]:
        if mode not in ("r", "rb"):
            raise ValueError("uploaded files are read-only")
        return open(self.filename, "rb")

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()
