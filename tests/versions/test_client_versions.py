"""The Python client's version methods against a real server: register (archive), list, activate,
refusals as the exception tree's errors, delete, reload."""

from __future__ import annotations

import io
import zipfile

import pytest

from modelaas.client import Client
from modelaas.errors import Conflict, NotFound


def test_client_versions(server, tmp_path):
    srv = server("--model", "versioned:Versioned", "--model-name", "versioned", "--serving-poll", "0.2")
    archive = tmp_path / "v.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("weights.json", '{"scale": 3}')
    archive.write_bytes(buf.getvalue())
    with Client(srv.url, timeout=30) as client:
        record = client.register_version("versioned", archive=archive, description="imported")
        assert (record["version"], record["source"]) == (1, {"kind": "archive", "filename": "v.zip"})
        assert client.register_version("versioned", archive=archive)["version"] == 2
        listing = client.list_versions("versioned")
        assert [v["version"] for v in listing["versions"]] == [2, 1] and listing["active"] is None
        assert client.activate_version("versioned", 1) == {"model": "versioned", "active": 1, "generation": 1}
        with pytest.raises(NotFound):
            client.activate_version("versioned", 9)
        with pytest.raises(Conflict):
            client.delete_version("versioned", 1)  # the active one
        client.delete_version("versioned", 2)
        assert [v["version"] for v in client.versions("versioned")["versions"]] == [1]
        assert client.reload("versioned")["generation"] == 2
