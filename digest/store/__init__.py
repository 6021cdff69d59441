"""The store: a SQLAlchemy database (SQLite file by default, PostgreSQL by URL).

``Store(url)`` opens the database and brings its schema up to date with the Alembic
migrations shipped in ``digest/store/migrations``. Writes happen in short
transactions that commit only after the fact they record is true.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import StoreError
from ..redact import mask_url

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant shared by every digest process: the key of the migration advisory lock.
_MIGRATION_LOCK_ID = 0x64696765


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets a reader (preview, web) work while a sender writes; foreign keys are off
    # by default in SQLite; busy_timeout waits for a lock rather than failing at once.
    # synchronous=NORMAL in WAL mode: a commit is written to the log without waiting for
    # fsync (the log is synced at checkpoints). A committed transaction survives the
    # process being killed (kill -9, a crash); only a power loss or an OS crash can undo
    # the last few commits, which the ledger then sends again. With FULL, every batch a
    # sender settles waited for the disk.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config() -> AlembicConfig:
    """An Alembic configuration pointing at the packaged migrations."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def make_engine(url: str) -> Engine:
    """An engine for ``url``; a missing SQLite folder is created first."""
    try:
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, future=True)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(
            mask_url(f"The database URL '{url}' cannot be used: {exc}.")
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class Store:
    """An open, migrated database. Use ``session()`` for a unit of work."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Bring the schema up to the newest migration (a no-op when it is current).

        Two processes starting on the same new database (two daemons, a daemon and a
        ``run``) take turns: PostgreSQL through an advisory lock held for the
        transaction, SQLite through an exclusive lock on a file beside the database.
        """
        config = alembic_config()
        try:
            with self._file_lock(), self.engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(
                        f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})"
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except OperationalError as exc:
            raise StoreError(
                mask_url(
                    f"Cannot open the database {self.engine.url.render_as_string()}: {exc.orig}."
                )
            ) from None

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        database = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        if not database or database == ":memory:":
            yield
            return
        with open(f"{database}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back otherwise."""
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()
