"""Engine and session setup; the schema is brought up to date by Alembic migrations."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from digest.errors import ConfigError, StateBusy, StateError, StateUnwritable
from digest.fsutil import file_system_problem, storage_error
from digest.state import driver
from digest.state.driver import BUSY_TIMEOUT_S, MIGRATIONS, head_revision

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = logging.getLogger(__name__)


def job_store(database: Database) -> Any:
    """The scheduler's job store, in the state (its missed runs survive a restart)."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    return SQLAlchemyJobStore(engine=for_writes(database.engine))


def shown_url(url: str) -> str:
    """A database URL without its password."""
    return make_url(url).render_as_string(hide_password=True)


def exists(url: str) -> bool:
    """Whether the database at `url` exists: an SQLite file is only there once created; a
    server database (PostgreSQL) is taken to exist."""
    return driver.exists(url)


def empty_engine() -> Engine:
    """A fresh in-memory SQLite state at the newest schema: what a read-only command
    reads before the real state exists, so that it creates nothing on disk."""
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    upgrade(engine)
    return engine


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout. With
    `read_only` (SQLite only), the file is opened as immutable and never written: a view
    of a state on a full disk or a read-only folder."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(
            f"digest.database_url = {url!r} is not a valid SQLAlchemy URL",
            hint='e.g. "postgresql+psycopg://digest@db/digest", or empty for SQLite in state_dir',
        ) from None
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not read_only:
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                private_database(Path(parsed.database))
            except OSError as exc:
                raise storage_error(folder, exc) from None
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S}
        if read_only and parsed.database:
            uri = f"file:{Path(parsed.database).resolve()}?mode=ro&immutable=1"
            kwargs["creator"] = lambda: sqlite3.connect(
                uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False
            )
    try:
        engine = create_engine(parsed, **kwargs)
    except Exception as exc:  # a missing driver, for instance
        raise StateError(f"cannot open database {parsed.render_as_string()}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_read_pragmas if read_only else _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "handle_error", _sqlite_error)
    return engine


def private_database(path: Path) -> None:
    """The SQLite file (addresses, tokens, the web secret) readable by its owner only:
    created 0600 before SQLite opens it (its -wal and -shm files take the same mode),
    and an older one left readable by others is narrowed to 0600."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)
        except FileNotFoundError:
            continue
        except PermissionError:
            continue  # not ours to change: the owner keeps it as it is


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy own transactions (pysqlite would commit before every DDL
    # statement), so a failed migration leaves nothing half-done.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cur.close()


def _sqlite_read_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    dbapi_conn.execute("PRAGMA query_only=ON")


# An execution option marking a connection whose transactions write. On SQLite they
# begin IMMEDIATE: the write lock is taken (waiting up to the busy timeout) before the
# first read, so a commit by another process between this transaction's reads and its
# writes cannot fail the upgrade with SQLITE_BUSY, which no busy timeout waits out.
WRITE = "digest_write"


def _sqlite_begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get(WRITE)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def for_writes(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions take the write lock up front."""
    return engine.execution_options(**{WRITE: True})


def begin_write(session: Session) -> None:
    """End the session's read transaction, if any, and begin a write transaction (BEGIN
    IMMEDIATE on SQLite: it waits its turn for the write lock). Call it before the first
    statement of a unit of work that writes; keep what follows short."""
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={WRITE: True})


def _sqlite_error(ctx: Any) -> StateError | None:
    """Turn SQLite's failures that are not bugs into the core's one-line errors."""
    return translate(ctx.original_exception, ctx.engine.url.database if ctx.engine else None)


def translate(exc: BaseException, path: str | None) -> StateError | None:
    """The StateError for a sqlite3 error that a user can act on, else None."""
    if not isinstance(exc, sqlite3.Error):
        return None
    where = path or "the state database"
    text = str(exc).lower()
    if "database is locked" in text or "database table is locked" in text:
        return StateBusy(
            f"{where} stayed locked by another digest process for {BUSY_TIMEOUT_S} s; "
            "nothing was changed",
            hint="try again in a minute (`digest status` shows what is running)",
        )
    problem = file_system_problem(Path(where)) if path else None
    if "disk is full" in text or problem == "full":
        return StateUnwritable(
            f"{where}: no space left on the disk (nothing stored was lost)",
            hint="free some space there, then run the command again",
        )
    if "readonly" in text or "read-only" in text or problem == "read-only":
        return StateUnwritable(
            f"{where}: the state folder is read-only, so nothing could be stored",
            hint="make the folder and the database file writable for this user (or point "
            "digest.state_dir elsewhere), then run the command again",
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StateError(
            f"{where} is not a digest database or is damaged ({exc}); it was left as it is",
            hint="restore it from a backup, or move it aside to start an empty state",
        )
    if "unable to open" in text or "disk i/o error" in text:
        return StateError(
            f"cannot open {where} ({exc})",
            hint="check that its folder exists and that this user may read and write it",
        )
    return None


def alembic_config(engine: Engine) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Create or migrate the schema to the newest revision."""
    from alembic import command  # imported only when a schema may need to change

    try:
        command.upgrade(alembic_config(engine), "head")
    except DBAPIError as exc:
        if engine.dialect.name == "sqlite" and exc.orig is not None:
            known = translate(exc.orig, engine.url.database)
            if known is not None:
                raise known from None
        raise StateError(
            f"cannot open database {engine.url.render_as_string()}: {exc.orig}",
            hint="check database_url and that the server is running",
        ) from None


def up_to_date(engine: Engine) -> bool:
    """Whether the database is already at the newest revision (False when that cannot
    be read: `upgrade` then creates, migrates, or says what is wrong)."""
    head = head_revision()
    if not head:
        return False
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except DBAPIError:
        return False
    return [tuple(row) for row in rows] == [(head,)]


def make_sessionmaker(engine: Engine, *, write: bool = False) -> sessionmaker[Any]:
    """Sessions over `engine`; with `write`, every transaction begins as a write one."""
    options = {WRITE: True} if write else {}
    return sessionmaker(engine, expire_on_commit=False, execution_options=options)


class Taken(StateError):
    """Another process wrote the same rows first (a unique key refused ours)."""


@contextmanager
def writing_first(session: Session) -> Iterator[Session]:
    """Begin a write transaction (`begin_write`), run the block, commit; when a unique
    key says another process wrote the same rows first, roll everything back and raise
    Taken."""
    try:
        begin_write(session)
        yield session
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Taken("another process wrote these rows first; nothing was written") from None


class Database:
    """The state database as the layers above see it: transactions to read and write in,
    never an engine or a session type of their own. Opened lazily: building one touches
    nothing; the first transaction creates and migrates the state (`open_state`)."""

    def __init__(self, engine: Engine, *, migrated: bool = False) -> None:
        self.engine = engine
        self._migrated = migrated
        self._sessions: sessionmaker[Session] | None = None

    def ready(self) -> Database:
        """Create or migrate the schema now (where a command wants it to fail). A state
        already at the newest revision is only read (Alembic is not even imported)."""
        if not self._migrated:
            if not up_to_date(self.engine):
                upgrade(self.engine)
            self._migrated = True
        return self

    @property
    def dialect_name(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    @property
    def sessions(self) -> sessionmaker[Session]:
        """What opens session transactions (the repositories' `handles.Sessions`)."""
        if self._sessions is None:
            self.ready()
            self._sessions = make_sessionmaker(self.engine)
        return self._sessions

    @property
    def writer(self) -> Engine:
        """The same pool, whose transactions take the write lock up front."""
        return for_writes(self.ready().engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction the caller commits (a session left open ends rolled back)."""
        with self.sessions() as session:
            yield session

    @contextmanager
    def tx(self) -> Iterator[Session]:
        """A write transaction (waiting its turn for the write lock on SQLite), committed
        when the block ends without an exception."""
        with self.sessions() as session:
            begin_write(session)
            yield session
            session.commit()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction, rolled back at the end."""
        with self.sessions() as session:
            try:
                yield session
            finally:
                session.rollback()


def open_state(url: str, *, read_only: bool = False) -> Database:
    """The state at `url`, migrated on first use (see `Database`)."""
    return Database(make_engine(url, read_only=read_only))


def empty_state() -> Database:
    """An empty in-memory state at the newest schema (see `empty_engine`)."""
    return Database(empty_engine(), migrated=True)
