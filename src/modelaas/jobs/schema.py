"""The job store's tables and their versioned migrations (SQLAlchemy Core).

The schema version lives in ``modelaas_schema``. On start the store applies every
migration above it, in one transaction, under a lock (PostgreSQL advisory lock; SQLite
serialises writers), so several servers starting together migrate once.
To change the schema, append a step to ``MIGRATIONS``; never edit a released one.
"""

from __future__ import annotations

import sqlite3
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
    # v2: how many log lines the job has (the next line's number), how many were not kept;
    # who submitted it (an id derived from the access token; None without access control)
    sa.Column("log_lines", sa.Integer, nullable=False, server_default="0"),
    sa.Column("log_dropped", sa.Integer, nullable=False, server_default="0"),
    sa.Column("submitter", sa.String(64)),
    sa.Index("modelaas_jobs_model_submitter", "model", "submitter", "created_at"),
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
    # v2: a log line's number in its job's log, from 0 (None for other events)
    sa.Column("line", sa.Integer),
    sa.Index("modelaas_job_events_line", "job_id", "line", unique=True),
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

# v3: registered versions of a model and what each model serves (src/modelaas/versions/)
versions = sa.Table(
    "modelaas_versions",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(100)),
    sa.Column("source", Json, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("args", Json, nullable=False),
    sa.Column("metrics", Json, nullable=False),
    sa.Column("files", Json, nullable=False),
)

serving = sa.Table(
    "modelaas_serving",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("active_version", sa.Integer),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("last_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(100)),
)


def _v1(conn: sa.Connection) -> None:
    """The first tables: ``jobs`` and ``events`` without the columns later steps add."""
    v1, later = sa.MetaData(), {"log_lines", "log_dropped", "line", "submitter"}
    for table in (jobs, events, servers):
        columns = [c._copy() for c in table.columns if c.name not in later]
        indexes = [
            sa.Index(i.name, *[c.name for c in i.columns], unique=i.unique)
            for i in table.indexes
            if not {c.name for c in i.columns} & later
        ]
        copy = sa.Table(table.name, v1, *columns, *indexes, **table.kwargs)
        copy.create(conn, checkfirst=True)


def _v2(conn: sa.Connection) -> None:
    """Log lines get their number (to read from an offset without a scan), jobs count theirs
    and know who submitted them."""
    conn.execute(sa.text("ALTER TABLE modelaas_jobs ADD COLUMN log_lines INTEGER NOT NULL DEFAULT 0"))
    conn.execute(sa.text("ALTER TABLE modelaas_jobs ADD COLUMN submitter VARCHAR(64)"))
    conn.execute(sa.text("ALTER TABLE modelaas_jobs ADD COLUMN log_dropped INTEGER NOT NULL DEFAULT 0"))
    conn.execute(sa.text("ALTER TABLE modelaas_job_events ADD COLUMN line INTEGER"))
    numbered = (
        "SELECT id, row_number() OVER (PARTITION BY job_id ORDER BY id) - 1 AS n "
        "FROM modelaas_job_events WHERE kind = 'log'"
    )
    if conn.dialect.name != "sqlite" or sqlite3.sqlite_version_info >= (3, 33, 0):
        conn.execute(
            sa.text(
                f"UPDATE modelaas_job_events SET line = numbered.n FROM ({numbered}) AS numbered "
                "WHERE modelaas_job_events.id = numbered.id"
            )
        )
    else:  # pragma: no cover - SQLite before 3.33 has no UPDATE ... FROM
        ids = conn.execute(
            sa.text("SELECT job_id, id FROM modelaas_job_events WHERE kind = 'log' ORDER BY job_id, id")
        ).all()
        numbers: list[dict[str, int]] = []
        previous, n = None, 0
        for job_id, id_ in ids:
            n = n + 1 if job_id == previous else 0
            previous = job_id
            numbers.append({"n": n, "id": id_})
        if numbers:
            conn.execute(sa.text("UPDATE modelaas_job_events SET line = :n WHERE id = :id"), numbers)
    conn.execute(
        sa.text(
            "UPDATE modelaas_jobs SET log_lines = (SELECT COUNT(*) FROM modelaas_job_events AS e "
            "WHERE e.job_id = modelaas_jobs.id AND e.kind = 'log')"
        )
    )
    conn.execute(sa.text("CREATE UNIQUE INDEX modelaas_job_events_line ON modelaas_job_events (job_id, line)"))
    conn.execute(sa.text("CREATE INDEX modelaas_jobs_model_submitter ON modelaas_jobs (model, submitter, created_at)"))


def _v3(conn: sa.Connection) -> None:
    """Versions of a model (registered from trainings or imported) and what each model serves."""
    for table in (versions, serving):
        table.create(conn, checkfirst=True)


MIGRATIONS: list[Callable[[sa.Connection], None]] = [_v1, _v2, _v3]
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
