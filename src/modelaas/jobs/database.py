"""The job store's database: engines, transactions, the migration lock.

* SQLite (WAL): a transaction that only reads is a deferred one, so it never blocks a
  writer; one that writes starts with ``BEGIN IMMEDIATE``, waiting up to 30 s for the lock,
  so that it never fails half-way when upgrading.
* PostgreSQL (psycopg 3): connections are checked before use and opened again when dropped.

A transaction that fails for a passing reason (a locked SQLite file, a full disk, a
PostgreSQL connection dropped or refused, a deadlock) is run again, with back-off, for up
to ``retry_for`` seconds; other failures raise at once, and so does a write whose commit
may have happened already, unless it is safe to repeat.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from modelaas.errors import ConfigError
from modelaas.jobs import schema

RETRY_FOR = 10.0
"""Seconds a store call keeps retrying a transaction that failed for a passing reason."""
CONNECT_TIMEOUT = 10
"""Seconds to wait for a PostgreSQL connection before the attempt counts as failed."""
RETRY_FIRST_DELAY = 0.05
RETRY_MAX_DELAY = 1.0
READ_OPTION = "modelaas_read"
"""Execution option of connections that only read (SQLite: a deferred transaction)."""

T = TypeVar("T")


def store_url(jobs_db: str | None, data_dir: Path) -> str:
    """The SQLAlchemy URL for ``--jobs-db``: a file path (SQLite), a ``postgresql://`` URL or an
    SQLAlchemy URL as it is (default: SQLite file ``jobs.sqlite3`` in the data directory)."""
    if not jobs_db:
        return f"sqlite:///{data_dir / 'jobs.sqlite3'}"
    if jobs_db.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + jobs_db.split("://", 1)[1]
    if jobs_db.startswith(("sqlite:", "postgresql+")):
        return jobs_db
    if "://" in jobs_db:
        raise ConfigError(
            f"--jobs-db must be an SQLite file path, a postgresql:// URL or a sqlite:/// URL, not {jobs_db!r}"
        )
    return f"sqlite:///{Path(jobs_db).expanduser().absolute()}"  # a plain path: /tmp/x.db, ./x.db, x.db


def relative_sqlite_warning(jobs_db: str | None) -> str | None:
    """A warning when ``sqlite:///tmp/x.db`` (three slashes: ``./tmp/x.db``, relative to the
    current directory) was most likely meant as ``/tmp/x.db``: that folder exists, ``./tmp`` not."""
    if not jobs_db or not jobs_db.startswith("sqlite:///") or jobs_db.startswith("sqlite:////"):
        return None
    relative = jobs_db[len("sqlite:///") :].split("?", 1)[0]
    if not relative or relative == ":memory:" or Path(relative).parent.is_dir():
        return None
    if not Path("/" + relative).parent.is_dir():
        return None
    return (
        f"--jobs-db {jobs_db} is the file {Path(relative).absolute()} (after sqlite:/// a path is relative "
        f"to the current directory); for /{relative} write the path /{relative} or sqlite:////{relative}."
    )


def store_name(url: str) -> str:
    """The job store as a user knows it: an SQLite file's absolute path, else the URL (no password)."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        return "<job store>"
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return str(Path(parsed.database).absolute())
    return _safe(url)


class Database:
    """An engine on the job store's URL and the transactions run on it."""

    def __init__(self, url: str, *, retry_for: float = RETRY_FOR) -> None:
        self.url = url
        self.retry_for = retry_for
        try:
            self.engine = _engine(url)
        except (ImportError, sa.exc.ArgumentError) as exc:
            hint = " (install modelaas[postgres])" if "postgresql" in url else ""
            raise ConfigError(f"Cannot use job store {_safe(url)}: {exc}{hint}") from None

    def migrate(self) -> int:
        """Bring the schema up to date; several processes may call it at once (they take turns)."""
        try:
            with _sqlite_migration_lock(self.engine):
                return schema.migrate(self.engine)
        except sa.exc.OperationalError as exc:
            raise ConfigError(f"Cannot open job store {_safe(self.url)}: {exc.orig}") from None

    def close(self) -> None:
        self.engine.dispose()

    # ----------------------------------------------------------- transactions
    def _read(self, work: Callable[[sa.Connection], T]) -> T:
        """Run ``work`` in a read-only transaction (retried like a write; reads repeat safely)."""
        return self._run(work, read=True, repeatable=True)

    def _write(self, work: Callable[[sa.Connection], T], *, repeatable: bool = False) -> T:
        """Run ``work`` in a write transaction.

        ``repeatable``: running it again after a commit that failed midway cannot do harm
        (it is a compare-and-set or it overwrites with the same values), so even a
        connection lost while committing is retried.
        """
        return self._run(work, read=False, repeatable=repeatable)

    def _run(self, work: Callable[[sa.Connection], T], *, read: bool, repeatable: bool) -> T:
        deadline: float | None = None
        delay = RETRY_FIRST_DELAY
        while True:
            committing = False
            try:
                with self.engine.connect() as conn:
                    if read:
                        conn.execution_options(**{READ_OPTION: True})
                    with conn.begin():
                        result = work(conn)
                        committing = True
                return result
            except sa.exc.DBAPIError as exc:
                if not _passing(exc) or (committing and not repeatable):
                    raise
                now = time.monotonic()
                deadline = deadline or now + self.retry_for
                if now >= deadline:
                    raise
                time.sleep(min(delay, deadline - now))
                delay = min(delay * 2, RETRY_MAX_DELAY)


@contextlib.contextmanager
def _sqlite_migration_lock(engine: sa.Engine) -> Iterator[None]:
    """For a SQLite file, a lock file beside it held during migration (PostgreSQL uses an advisory lock).

    pysqlite starts no transaction before DDL, so two processes migrating a new file would
    both try to create the tables.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                folder = Path(path).parent.absolute()
                raise ConfigError(f"Cannot create {folder}, the folder of job store {path}: {exc.strerror}.") from None
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            # A writer takes the lock at once (waiting up to the busy timeout), so that it never
            # fails half-way when upgrading; a reader takes none: WAL lets it read beside a writer.
            read = conn.get_execution_options().get(READ_OPTION, False)
            conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args={"connect_timeout": CONNECT_TIMEOUT}
    )


def is_passing(exc: BaseException) -> bool:
    """Whether a store call that raised ``exc`` may succeed later (the store is unreachable or busy)."""
    return isinstance(exc, sa.exc.DBAPIError) and _passing(exc)


def first_line(exc: BaseException) -> str:
    """The first line of what a store failure says (the driver's message, without the SQL)."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def _passing(exc: sa.exc.DBAPIError) -> bool:
    """Whether running the transaction again may succeed: a lock, a lost or refused connection, a full disk."""
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    if isinstance(exc.orig, sqlite3.OperationalError):
        text = str(exc.orig).lower()
        return "locked" in text or "busy" in text or "disk is full" in text  # room may be made
    return True  # PostgreSQL: connection failures, administrator shutdowns, deadlocks, serialisation


def _safe(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<job store>"
