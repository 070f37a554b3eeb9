"""Shared fixtures: settings in a temp data dir and in-process apps around fixture models."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelaas.model.adapters import ModelAdapter
from modelaas.runtime import Runtime
from modelaas.settings import Settings
from modelaas.web.app import create_app
from support import load_fixture

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = FIXTURES / "models"


@pytest.fixture(autouse=True, scope="session")
def _fixture_models_importable() -> Iterator[None]:
    """Fixture models import in this process and in the processes it starts (trainings)."""
    sys.path.insert(0, str(MODELS))
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(MODELS), saved]))
    yield
    sys.path.remove(str(MODELS))
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """``make_client("module:attr", ..., **settings_overrides)`` -> a started TestClient."""
    opened: list[TestClient] = []

    def make(*targets: str | ModelAdapter, **overrides: Any) -> TestClient:
        if len(targets) == 1 and isinstance(targets[0], str) and "model" not in overrides:
            # so that training processes load the same model
            overrides["model"] = targets[0]
            overrides.setdefault("model_name", targets[0].split(":")[0].split(".")[0].replace("_", "-"))
        s = Settings(**{**settings.__dict__, **overrides})
        name = s.model_name if len(targets) == 1 else None
        adapters = [t if isinstance(t, ModelAdapter) else load_fixture(t, name, settings=s) for t in targets]
        client = TestClient(create_app(s, runtime=Runtime(s, adapters)), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


# ----------------------------------------------------------------- real servers
from support import ServerProcess  # noqa: E402  (here for the fixtures below; tests import support)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(
        *args: str, env: dict[str, str] | None = None, ready: bool = True, port: int | None = None
    ) -> ServerProcess:
        srv = ServerProcess(list(args), data_dir=tmp_path / "data", env=env, port=port)
        started.append(srv)
        if ready:
            srv.wait_ready()
        return srv

    yield start
    for srv in started:
        srv.stop()


# ----------------------------------------------------------------- job stores
PG_ADMIN_URL = os.environ.get("MODELAAS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped afterwards)."""
    import uuid

    import sqlalchemy as sa

    admin_url = "postgresql+psycopg://" + PG_ADMIN_URL.split("://", 1)[1]
    name = f"modelaas_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def jobs_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A job-store URL (``--jobs-db`` value) for each supported database, empty for each test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
        return
    import sqlalchemy as sa

    url = request.getfixturevalue("pg_database")
    yield url
    engine = sa.create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TABLE IF EXISTS modelaas_jobs, modelaas_job_events, modelaas_servers, modelaas_schema, "
            "modelaas_versions, modelaas_serving"
        )
    engine.dispose()


class Outage:
    """Outages of one PostgreSQL database of this test's own (never the shared ``test`` one)."""

    def __init__(self, admin: Any, name: str) -> None:
        self.admin = admin
        self.name = name
        self.terminated = 0

    def terminate(self) -> int:
        """Drop every connection to the database (as ``pg_terminate_backend`` does in an outage)."""
        with self.admin.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            ).all()
        self.terminated += len(rows)
        return len(rows)

    def refuse(self, refuse: bool = True) -> None:
        """Refuse new connections (and drop the current ones) until called with False."""
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS {str(not refuse).lower()}')
        if refuse:
            self.terminate()


@pytest.fixture
def pg_outage() -> Iterator[tuple[str, Outage]]:
    """A PostgreSQL database for this test alone, and the means to take it away."""
    import uuid

    import sqlalchemy as sa

    admin_url = "postgresql+psycopg://" + PG_ADMIN_URL.split("://", 1)[1]
    name = f"modelaas_outage_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    outage = Outage(admin, name)
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}", outage
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def spans() -> Iterator[Any]:
    """Tracing on, into an in-memory exporter (the OpenTelemetry SDK), for one test."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from modelaas.telemetry import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing._tracer = None
