"""Fixtures of the compatibility corpus: the DEEPaaS virtualenv and both servers per model."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support_deepaas import Server, deepaas_venv, serve_both


@pytest.fixture(scope="session")
def corpus_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return deepaas_venv(tmp_path_factory)


@pytest.fixture(scope="module")
def serve(corpus_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], dict[str, Server]]]:
    """``serve(model)`` -> DEEPaaS and modelaas serving that model, started once per test module.

    A server that does not become ready fails the tests that use it (``Server.require``),
    with its log, rather than erroring the module.
    """
    with contextlib.ExitStack() as stack:
        started: dict[str, dict[str, Server]] = {}

        def get(model: str) -> dict[str, Server]:
            if model not in started:
                started[model] = stack.enter_context(serve_both(corpus_venv, model, tmp_path_factory.mktemp(model)))
            return started[model]

        yield get
