"""The serving state of each model in the job store: its active version and its generation.

Any change of what a model should serve (an activation, a rollback, a reload request) raises
its generation in one transaction; servers compare the generations they loaded with the
store's (one small query) and reload when they differ.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from modelaas.jobs import schema
from modelaas.jobs.database import Database
from modelaas.jobs.records import utcnow
from modelaas.jobs.rows import utc


@dataclass(frozen=True)
class ServingState:
    model: str
    active_version: int | None
    """The version served (its artefacts given to the model), or None: the model as installed."""
    generation: int
    """Raised by each activation and reload request; 0 for a model never changed."""
    updated_at: dt.datetime | None = None
    updated_by: str | None = None


class ServingStore(Database):
    """Reads and changes the serving state of models (the ``modelaas_serving`` table)."""

    def serving(self) -> dict[str, ServingState]:
        """Every model's serving state that was ever changed (absent: version None, generation 0)."""

        def work(conn: sa.Connection) -> dict[str, ServingState]:
            rows = conn.execute(sa.select(schema.serving)).all()
            return {row.model: _state(row) for row in rows}

        return self._read(work)

    def state(self, model: str) -> ServingState:
        return self.serving().get(model) or ServingState(model, None, 0)

    def activate(self, model: str, version: int | None, *, by: str | None = None) -> ServingState:
        """Serve ``version`` of ``model`` (None: the model as installed); raises the generation."""
        return self._write(lambda conn: change(conn, model, by=by, version=version, set_version=True))

    def request_reload(self, model: str, *, by: str | None = None) -> ServingState:
        """Reload ``model`` (same version) in every server; raises the generation."""
        return self._write(lambda conn: change(conn, model, by=by, version=None, set_version=False))


def locked_row(conn: sa.Connection, model: str) -> Any:
    """The model's serving row, created if missing, locked until the transaction ends."""
    t = schema.serving
    insert: Any = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(t)
    values = {"model": model, "active_version": None, "generation": 0, "last_version": 0, "updated_at": utcnow()}
    conn.execute(insert.values(**values).on_conflict_do_nothing(index_elements=["model"]))
    return conn.execute(sa.select(t).where(t.c.model == model).with_for_update()).one()


def change(conn: sa.Connection, model: str, *, by: str | None, version: int | None, set_version: bool) -> ServingState:
    t = schema.serving
    row = locked_row(conn, model)
    values: dict[str, Any] = {"generation": row.generation + 1, "updated_at": utcnow(), "updated_by": by}
    if set_version:
        values["active_version"] = version
    conn.execute(t.update().where(t.c.model == model).values(**values))
    return _state(conn.execute(sa.select(t).where(t.c.model == model)).one())


def _state(row: Any) -> ServingState:
    return ServingState(
        model=row.model,
        active_version=row.active_version,
        generation=row.generation,
        updated_at=utc(row.updated_at) if row.updated_at is not None else None,
        updated_by=row.updated_by,
    )
