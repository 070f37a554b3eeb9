"""Registered versions of a model: numbered sets of artefacts with where they came from.

A version's files live in ``<data dir>/versions/<model>/<n>/`` and never change once
registered; its record (source, arguments, metrics, the files' list) is in the job store.
Numbers count up per model and are never given twice, even after a delete. Files are
gathered in a staging folder first and moved into place in the transaction that numbers
them, so a failed registration leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from modelaas.errors import Conflict, NotFound
from modelaas.jobs import schema
from modelaas.jobs.records import utcnow
from modelaas.jobs.rows import utc
from modelaas.versions.serving import ServingState, ServingStore, change, locked_row


@dataclass(frozen=True)
class Version:
    model: str
    version: int
    created_at: dt.datetime
    created_by: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    """``{"kind": "job", "job": id}`` or ``{"kind": "archive", "filename": name}``."""
    description: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    """``[{"path": "relative/path", "size": bytes}]``."""

    def to_json(self, *, active: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "source": self.source,
            "description": self.description,
            "args": self.args,
            "metrics": self.metrics,
            "files": self.files,
            "active": active,
        }


def versions_root(data_dir: Path) -> Path:
    return data_dir / "versions"


def version_dir(data_dir: Path, model: str, version: int) -> Path:
    """Where the files of ``version`` of ``model`` are."""
    return versions_root(data_dir) / model / str(version)


class VersionRegistry(ServingStore):
    """The versions of models and what each serves, on the job store's URL and the data dir."""

    def __init__(self, url: str, data_dir: Path) -> None:
        super().__init__(url)
        self.data_dir = data_dir
        self.registered: Callable[[Version, Path], None] | None = None
        """Called after each registration with the new version and its folder (MLflow's Model
        Registry: versions/mlflow.py ``registered_hook``); it reports its own failures."""

    # ------------------------------------------------------------------ reading
    def list(self, model: str) -> list[Version]:
        """The model's versions, newest first."""
        t = schema.versions

        def work(conn: sa.Connection) -> list[Version]:
            rows = conn.execute(sa.select(t).where(t.c.model == model).order_by(t.c.version.desc())).all()
            return [_version(r) for r in rows]

        return self._read(work)

    def get(self, model: str, version: int) -> Version:
        t = schema.versions

        def work(conn: sa.Connection) -> Any:
            return conn.execute(sa.select(t).where(t.c.model == model, t.c.version == version)).first()

        row = self._read(work)
        if row is None:
            raise NotFound(f"Model {model!r} has no version {version}.")
        return _version(row)

    def path(self, model: str, version: int) -> Path:
        return version_dir(self.data_dir, model, version)

    # ------------------------------------------------------------------ changing
    def register(
        self,
        model: str,
        staged: Path,
        *,
        source: dict[str, Any],
        args: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        description: str | None = None,
        by: str | None = None,
    ) -> Version:
        """A new version of ``model`` holding the files of ``staged`` (a folder made by :meth:`staging`,
        moved into place; removed if registration fails)."""
        files = _listing(staged)
        t = schema.versions
        placed: list[Path] = []

        def work(conn: sa.Connection) -> Version:
            row = locked_row(conn, model)
            number = row.last_version + 1
            conn.execute(schema.serving.update().where(schema.serving.c.model == model).values(last_version=number))
            record = Version(
                model=model,
                version=number,
                created_at=utcnow(),
                created_by=by,
                source=source,
                description=description,
                args=args or {},
                metrics=metrics or {},
                files=files,
            )
            conn.execute(
                t.insert().values(
                    model=model,
                    version=number,
                    created_at=record.created_at,
                    created_by=by,
                    source=source,
                    description=description,
                    args=record.args,
                    metrics=record.metrics,
                    files=files,
                )
            )
            target = self.path(model, number)
            if target.exists():  # left by a registration whose commit failed: never served
                shutil.rmtree(target)
            os.rename(staged, target)  # the last step: a statement that failed has moved nothing
            placed.append(target)
            return record

        try:
            made = self._write(work)
        except BaseException:
            for target in placed:
                shutil.rmtree(target, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        if self.registered is not None:
            self.registered(made, self.path(model, made.version))
        return made

    def staging(self, model: str) -> Path:
        """A new empty folder beside the model's versions, for the files of a registration."""
        parent = versions_root(self.data_dir) / model
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))

    def activate(self, model: str, version: int | None, *, by: str | None = None) -> ServingState:
        """Serve ``version`` (a registered one; None: the model as installed) everywhere; 404 if unknown."""
        t = schema.versions

        def work(conn: sa.Connection) -> ServingState:
            if version is not None:
                found = conn.execute(sa.select(t.c.version).where(t.c.model == model, t.c.version == version)).first()
                if found is None:
                    raise NotFound(f"Model {model!r} has no version {version}.")
            return change(conn, model, by=by, version=version, set_version=True)

        return self._write(work)

    def delete(self, model: str, version: int) -> None:
        """Remove a version and its files; 409 for the active one, 404 for an unknown one."""
        t = schema.versions

        def work(conn: sa.Connection) -> None:
            row = locked_row(conn, model)
            if row.active_version == version:
                raise Conflict(
                    f"Version {version} of model {model!r} is the active one; activate another before deleting it."
                )
            gone = conn.execute(t.delete().where(t.c.model == model, t.c.version == version)).rowcount
            if not gone:
                raise NotFound(f"Model {model!r} has no version {version}.")

        self._write(work)
        shutil.rmtree(self.path(model, version), ignore_errors=True)


def _listing(folder: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out.append({"path": path.relative_to(folder).as_posix(), "size": path.stat().st_size})
    return out


def _version(row: Any) -> Version:
    return Version(
        model=row.model,
        version=row.version,
        created_at=utc(row.created_at),
        created_by=row.created_by,
        source=dict(row.source or {}),
        description=row.description,
        args=dict(row.args or {}),
        metrics=dict(row.metrics or {}),
        files=list(row.files or []),
    )
