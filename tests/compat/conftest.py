"""Fixtures of the compatibility corpus: the DEEPaaS virtualenvs (2.6.0; 1.3.0 for v1) and both servers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support_deepaas import V1, Server, deepaas_venv, serve_both


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


@pytest.fixture(scope="session")
def corpus_venv_v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return deepaas_venv(tmp_path_factory, V1)


@pytest.fixture(scope="module")
def v1_servers(corpus_venv_v1: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """DEEPaaS 1.3.0 and modelaas serving every model of the v1 corpus, started once per test module.

    DEEPaaS 1.3.0 has no ``--model-name``: it serves every installed v1 model, and so does
    modelaas here. modelaas runs with ``--pass-unresolved-urls``: the corpus's URLs name
    ``.invalid`` hosts, which modelaas's v1 URL check refuses by default (the models only
    parse them; none fetches).
    """
    run = tmp_path_factory.mktemp("v1-corpus")
    with serve_both(corpus_venv_v1, None, run, release=V1, modelaas_flags=("--pass-unresolved-urls",)) as servers:
        yield servers
