"""Uploaded files kept with a job are referred to in its stored arguments; a client's own
values must never be taken for such a reference."""

from __future__ import annotations

from pathlib import Path

from modelaas.jobs.service import _keep_files, restore_files
from modelaas.model.files import File


def test_a_clients_value_that_looks_like_a_file_reference_stays_a_value(tmp_path: Path) -> None:
    """Finding: a client's {"$file": N} inside a dict argument became a file reference in the training."""
    upload = tmp_path / "upload"
    upload.write_bytes(b"data")
    raw = {
        "options": {"$file": 0},
        "nested": [{"$file": 0}, {"$literal": {"$file": 0}}, {"a": 1}],
        "data": File("data", str(upload), "text/plain", "d.txt"),
    }
    inputs: list = []
    stored = {k: _keep_files(v, "job", tmp_path / "inputs", inputs) for k, v in raw.items()}
    restored = {k: restore_files(v, tuple(inputs)) for k, v in stored.items()}
    assert restored["options"] == {"$file": 0}
    assert restored["nested"] == [{"$file": 0}, {"$literal": {"$file": 0}}, {"a": 1}]
    assert isinstance(restored["data"], File) and restored["data"].original_filename == "d.txt"
    assert Path(restored["data"].filename).read_bytes() == b"data"
