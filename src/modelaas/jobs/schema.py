"""The job store's tables and their versioned migrations (SQLAlchemy Core).

The schema version lives in ``modelaas_schema``. On start the store applies every
migration above it, in one transaction, under a lock (PostgreSQL advisory lock; SQLite
serialises writers), so several servers starting together migrate once.
To change the schema, append a step to ``MIGRATIONS``; never edit a released one.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

version_table = sa.Table("modelaas_schema", metadata, sa.Column("version", sa.Integer, nullable=False))

jobs = sa.Table(
    "modelaas_jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("args", Json, nullable=False),
    sa.Column("raw", Json, nullable=False),
    sa.Column("inputs", Json, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("progress", sa.Float),
    sa.Column("metrics", Json, nullable=False),
    sa.Column("result", Json),
    sa.Column("message", sa.Text),
    sa.Column("owner", sa.String(100), nullable=False),
    sa.Column("runner", Json, nullable=False),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
    sa.Index("modelaas_jobs_status_owner", "status", "owner"),
    sa.Index("modelaas_jobs_model_created", "model", "created_at"),
)

events = sa.Table(
    "modelaas_job_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("data", Json, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("modelaas_job_events_job", "job_id", "id"),
    sqlite_autoincrement=True,
)

servers = sa.Table(
    "modelaas_servers",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
)


def _v1(conn: sa.Connection) -> None:
    for table in (jobs, events, servers):
        table.create(conn, checkfirst=True)


MIGRATIONS: list[Callable[[sa.Connection], None]] = [_v1]
LATEST = len(MIGRATIONS)


def migrate(engine: sa.Engine) -> int:
    """Bring the schema to ``LATEST``; returns the version found before."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(74657310)"))
        version_table.create(conn, checkfirst=True)
        current = conn.execute(sa.select(version_table.c.version)).scalar()
        if current is None:
            conn.execute(version_table.insert().values(version=0))
            current = 0
        if current > LATEST:
            from modelaas.errors import ConfigError

            raise ConfigError(
                f"The job store has schema version {current}, newer than this modelaas ({LATEST}); upgrade modelaas."
            )
        for step in MIGRATIONS[current:]:
            step(conn)
        conn.execute(version_table.update().values(version=LATEST))
        return int(current)
