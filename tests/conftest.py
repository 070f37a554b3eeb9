"""Shared fixtures: settings in a temp data dir and in-process apps around fixture models."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelaas.model.adapters import ModelAdapter
from modelaas.model.loader import ModelRef, load
from modelaas.runtime import Runtime
from modelaas.settings import Settings
from modelaas.web.app import create_app

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = FIXTURES / "models"


@pytest.fixture(autouse=True, scope="session")
def _fixture_models_importable() -> Iterator[None]:
    sys.path.insert(0, str(MODELS))
    yield
    sys.path.remove(str(MODELS))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def load_fixture(target: str, name: str | None = None, interface: str | None = None) -> ModelAdapter:
    """Load a fixture model as if it were installed: ``target`` is ``module[:attr]``."""
    name = name or target.split(":")[0].split(".")[0].replace("_", "-")
    return load(ModelRef(name, target, interface, "test"))


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """``make_client("module:attr", ..., **settings_overrides)`` -> a started TestClient."""
    opened: list[TestClient] = []

    def make(*targets: str | ModelAdapter, **overrides: Any) -> TestClient:
        s = Settings(**{**settings.__dict__, **overrides})
        adapters = [t if isinstance(t, ModelAdapter) else load_fixture(t) for t in targets]
        client = TestClient(create_app(s, runtime=Runtime(s, adapters)), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)
