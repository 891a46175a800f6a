"""The shared rate buckets (table ``rate_buckets``): the next free send slot of every
delivery worker on every host, in microseconds since the epoch by the database's clock.
The pacing built on it is mail/ratelimit.py's GlobalBucket. (Convention: state/handles.py.)"""

from __future__ import annotations

import functools

from sqlalchemy import BigInteger, ColumnElement, case, func, literal, literal_column, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

from digest.state.handles import Tx, dialect
from digest.state.models import RateBucket


def reserve(tx: Tx, name: str, span: int, horizon: int) -> tuple[int, int]:
    """Take the next `span` microseconds of slots from bucket `name` in one atomic
    statement, ``next_slot = max(next_slot, db now) + span`` (starting over from now when
    next_slot is more than `horizon` ahead: the clock stepped back). Returns the new
    next_slot and the database's now. A bucket no migration made is made first."""
    kind = dialect(tx)
    statement = _reserving(kind, name, span, horizon)
    row = tx.execute(statement).first()
    if row is None:
        tx.execute(_insert_missing(kind, name))
        row = tx.execute(statement).one()
    return int(row[0]), int(row[1])


@functools.lru_cache(maxsize=32)
def _reserving(kind: str, name: str, span: int, horizon: int) -> Executable:
    """The reserving statement, built once (the values are literals: the SQL is the same
    at every call)."""
    now = _db_now(kind)
    slot = RateBucket.__table__.c.next_slot
    start = case(
        (slot - now > literal(horizon), now),  # the clock stepped back
        else_=_greatest(kind, slot, now),
    )
    return (
        update(RateBucket)
        .where(RateBucket.name == name)
        .values(next_slot=start + literal(span))
        .returning(RateBucket.next_slot, now)
    )


def _db_now(kind: str) -> ColumnElement[int]:
    """The database's clock in whole microseconds since the epoch, one value per
    statement (SQLite's 'now' has millisecond steps)."""
    if kind == "postgresql":
        sql = "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000 AS BIGINT)"
    else:
        sql = (
            "(CAST(strftime('%s', 'now') AS INTEGER) * 1000000"
            " + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000)"
        )
    return literal_column(sql, BigInteger)


def _greatest(kind: str, a: ColumnElement[int], b: ColumnElement[int]) -> ColumnElement[int]:
    if kind == "postgresql":
        return func.greatest(a, b, type_=BigInteger)
    return func.max(a, b, type_=BigInteger)  # SQLite's max() of two values is scalar


def _insert_missing(kind: str, name: str) -> Executable:
    insert = postgresql.insert if kind == "postgresql" else sqlite.insert
    return insert(RateBucket).values(name=name, next_slot=0).on_conflict_do_nothing()
