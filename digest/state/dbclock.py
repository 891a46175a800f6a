"""The database's clock, as SQL: leases and heartbeats are written and compared by it
alone. Every host writes and compares the same clock, so a host whose clock is off
neither takes live rows nor keeps dead ones (as the rate limit does: ratebucket.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from digest.state.models import UTCDateTime


class db_now(FunctionElement[datetime]):
    """The database's clock now, as a UTCDateTime value (SQLite: UTC, as stored)."""

    type = UTCDateTime()
    name = "db_now"
    inherit_cache = True


class db_ago(FunctionElement[datetime]):
    """The database's clock, `seconds` ago."""

    type = UTCDateTime()
    name = "db_ago"
    inherit_cache = True

    def __init__(self, seconds: float) -> None:
        super().__init__(literal(float(seconds), Float()))


_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now'{})"  # ms; stored values have µs


@compiles(db_now, "postgresql")
def _pg_now(element: db_now, compiler: SQLCompiler, **kw: object) -> str:
    return "statement_timestamp()"


@compiles(db_now)
def _sqlite_now(element: db_now, compiler: SQLCompiler, **kw: object) -> str:
    return f"({_SQLITE_NOW.format('')} || '000')"


@compiles(db_ago, "postgresql")
def _pg_ago(element: db_ago, compiler: SQLCompiler, **kw: object) -> str:
    seconds = compiler.process(element.clauses, **kw)
    return f"(statement_timestamp() - make_interval(secs => {seconds}))"


@compiles(db_ago)
def _sqlite_ago(element: db_ago, compiler: SQLCompiler, **kw: object) -> str:
    seconds = compiler.process(element.clauses, **kw)
    shift = f", '-' || {seconds} || ' seconds'"
    return f"({_SQLITE_NOW.format(shift)} || '000')"
