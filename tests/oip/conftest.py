"""The module-wide OIP server (tests/oip/oip_live.py) that the real-client tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from oip_live import LiveServer, free_port, oip_adapters, serve_live

from modelaas.settings import Settings


@pytest.fixture(scope="module")
def oip_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("oip")), train_endpoint=False, grpc_port=free_port())
    yield from serve_live(settings, free_port(), oip_adapters(settings))
