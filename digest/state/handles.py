"""The handles the layers above pass to the repositories, without seeing SQLAlchemy.

Convention of every repository module here (outbox, workers, ratebucket, subscribers,
signups): a function takes the open transaction (`Tx`: a connection or session the
caller began) as its first argument, runs its statements in it and never commits; the
caller owns the transaction (`with engine.begin() as tx:` or the app's session scope)
and so decides what is atomic. Values go in as plain Python values and come back as
plain frozen dataclasses or tuples, never ORM objects.
"""

from __future__ import annotations

from typing import TypeAlias

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

Tx: TypeAlias = Connection | Session  # an open transaction, begun by the caller
Database: TypeAlias = Engine  # what opens transactions (begin, connect)


def dialect(database: Database | Tx) -> str:
    """'sqlite' or 'postgresql'."""
    bind = database.get_bind() if isinstance(database, Session) else database
    return bind.dialect.name
