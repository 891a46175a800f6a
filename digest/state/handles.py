"""The handles the layers above pass to the repositories, without seeing SQLAlchemy.

Convention of every repository module here (outbox, workers, ratebucket, subscribers,
signups): a function takes the open transaction (`Tx`: a connection or session the
caller began) as its first argument, runs its statements in it and never commits; the
caller owns the transaction (`with engine.begin() as tx:` or the app's session scope)
and so decides what is atomic. Values go in as plain Python values and come back as
plain frozen dataclasses or tuples, never ORM objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from digest.state import db

Tx: TypeAlias = Connection | Session  # an open transaction, begun by the caller
Unit: TypeAlias = Session  # a unit of work: what `db.Database.session()` opens
Database: TypeAlias = Engine  # what opens transactions (begin, connect)
Sessions: TypeAlias = sessionmaker[Session]  # what opens session transactions


@contextmanager
def writing(sessions: Sessions) -> Iterator[Session]:
    """A write transaction (on SQLite it waits its turn for the write lock first),
    committed when the block ends without an exception."""
    with sessions() as session:
        db.begin_write(session)
        yield session
        session.commit()


@contextmanager
def reading(sessions: Sessions) -> Iterator[Session]:
    """A read transaction, rolled back when the block ends."""
    with sessions() as session:
        yield session


def dialect(database: Database | Tx) -> str:
    """'sqlite' or 'postgresql'."""
    bind = database.get_bind() if isinstance(database, Session) else database
    return bind.dialect.name


def driver(tx: Tx) -> Any:
    """The DB-API connection (sqlite3 or psycopg) under ``tx``, in its transaction: for
    the plain-SQL readings of state/glance.py."""
    connection = tx.connection() if isinstance(tx, Session) else tx
    return connection.connection.driver_connection


def end_if_paused(tx: Tx, seconds: float) -> None:
    """PostgreSQL: should this transaction's process stop mid-way (a paused VM, SIGSTOP)
    with rows locked, the server ends its session after ``seconds`` idle, so the rows go
    back to the other workers once their lease runs out instead of waiting on the locks
    for as long as the pause lasts. SQLite needs nothing: a paused writer's lock times
    out the others' busy wait, and the rows stay claimable by lease."""
    if dialect(tx) == "postgresql":
        ms = max(1000, int(seconds * 1000))
        tx.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {ms}"))
