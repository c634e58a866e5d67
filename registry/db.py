"""Open the registry database: connect, refuse what is not a registry, migrate to the newest schema.

SQLite (the default) runs in WAL mode with a busy timeout, and every write transaction starts with
BEGIN IMMEDIATE: concurrent writers queue for the write lock instead of failing half way with
"database is locked" when a read transaction tries to upgrade to a write. On PostgreSQL write
transactions and migrations take advisory locks to the same effect. Version numbers come from an atomic
upsert in the same transaction as the row they number (registry/store.py).
"""

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from registry.errors import RegistryError
from tuneforge.base.secrets import mask_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 0x74756E65  # "tune": PostgreSQL advisory lock held while migrating
_WRITE_LOCK = 0x72656769  # "regi": held by every write transaction on PostgreSQL


def create_registry_engine(url: str, busy_timeout_s: float = 30.0, connect_timeout_s: int = 5) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise RegistryError(f"registry url {url!r} is not a valid SQLAlchemy URL") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, busy_timeout_s)
        connect_args = {"connect_timeout": connect_timeout_s} if parsed.get_backend_name() == "postgresql" else {}
        return create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as exc:
        raise RegistryError(f"registry url {mask_url(url)}: no driver ({exc})") from None


def _sqlite_engine(url, busy_timeout_s: float) -> Engine:
    if url.database and url.database != ":memory:":
        try:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"registry database {url.database}: {exc.strerror}") from None
    engine = create_engine(url, connect_args={"timeout": busy_timeout_s})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        # Take transaction control away from the sqlite3 module so that "begin" below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        # Readers (see `reading`) begin deferred: in WAL mode they never wait for, nor block, a writer.
        read_only = connection.get_execution_options().get("tuneforge_read_only", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    """The schema revision of the database, None when it is empty; refuses anything that is not a registry."""
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        if not tables:
            return None
        if "alembic_version" not in tables:
            shown = ", ".join(sorted(tables)[:3]) + (", ..." if len(tables) > 3 else "")
            raise RegistryError(
                f"{_where(engine)} is not a tuneforge registry (it holds other tables: {shown})"
            )
        revisions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(revisions) != 1 or revisions[0] not in known_revisions():
        raise RegistryError(
            f"{_where(engine)} is not a tuneforge registry this version can read "
            f"(schema revision {', '.join(revisions) or 'none'}; this tuneforge knows up to {head_revision()})"
        )
    return revisions[0]


def upgrade(engine: Engine, target: str = "head") -> None:
    """Migrate in one transaction; concurrent openers wait for the lock, then find nothing left to do."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, target)


def open_database(url: str, busy_timeout_s: float = 30.0, connect_timeout_s: int = 5) -> Engine:
    """An engine on a registry at the newest schema, or one RegistryError line saying why not."""
    engine = create_registry_engine(url, busy_timeout_s, connect_timeout_s)
    try:
        if current_revision(engine) != head_revision():
            upgrade(engine)
            current_revision(engine)
        if engine.dialect.name == "sqlite":
            _use_wal(engine, busy_timeout_s)
    except RegistryError:
        engine.dispose()
        raise
    except OperationalError as exc:
        engine.dispose()
        raise RegistryError(_unreachable(engine, exc)) from None
    except DatabaseError as exc:
        engine.dispose()
        if engine.dialect.name == "sqlite":
            raise RegistryError(f"{_where(engine)} is not a tuneforge registry (not a SQLite database)") from None
        raise RegistryError(f"{_where(engine)}: {_first_line(exc)}") from None
    return engine


def _use_wal(engine: Engine, busy_timeout_s: float) -> None:
    # Only once the file is known to be a registry: a foreign database is never touched. The mode is
    # stored in the file and cannot change inside a transaction, hence the raw connection. Switching
    # needs the file to itself and ignores the busy timeout, so processes opening a new registry at
    # the same moment retry until one of them has switched it (after that, everyone just reads "wal").
    deadline = time.monotonic() + busy_timeout_s
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        while cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                cursor.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        cursor.close()
    finally:
        connection.close()


def _where(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return f"registry database {engine.url.database}"
    return f"registry database {engine.url.render_as_string(hide_password=True)}"


def _unreachable(engine: Engine, exc: OperationalError) -> str:
    message = _first_line(exc)
    if engine.dialect.name == "sqlite":
        if "not a database" in message or "malformed" in message:
            return f"{_where(engine)} is not a tuneforge registry (not a SQLite database)"
        return f"{_where(engine)}: {message}"
    return f"cannot reach {_where(engine)}: {message}"


def _first_line(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One write transaction: everything in it commits together or not at all.

    Writers take turns, as BEGIN IMMEDIATE makes them on SQLite: on PostgreSQL an advisory lock does it,
    so "is the newest version of this name identical?" and the insert that follows see the same state.
    Write transactions only touch rows (blobs are stored before), so they are short.
    """
    with Session(engine, expire_on_commit=False) as session, session.begin():
        if engine.dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK})
        yield session


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A read-only snapshot (nothing written in it is committed)."""
    with Session(engine.execution_options(tuneforge_read_only=True)) as session, session.begin():
        yield session
        session.rollback()
