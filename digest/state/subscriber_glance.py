"""The subscriber list as `digest subscribers list` shows it, and `digest unsubscribe`,
with the database's driver alone and plain SQL, as glance.py reads `digest status`: no
SQLAlchemy to import, so the commands start at once.

Each answers only for a state that exists and is at the newest schema, and only when
the driver had no error; else None, and the caller takes the ordinary way (the
subscriber book: it migrates, opens a state read-only, or says what is wrong in one
line). Nothing is written unless the whole change is: an unsubscribe is one
transaction (on SQLite a write one from its start, as the book's), the same changes as
mail/subscribers.py `unsubscribe` makes: the subscriber's status and time, and their
pending deliveries skipped.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from digest.state import driver
from digest.state.states import UNSUBSCRIBED_ERROR, DeliveryStatus, SubscriberStatus

__all__ = ["Listed", "Unsubscribed", "listing", "unsubscribe"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listed:
    """A subscriber as the list shows them."""

    address: str
    name: str
    status: str
    themes: tuple[str, ...]
    bounce_count: int


@dataclass(frozen=True)
class Unsubscribed:
    """What `unsubscribe` did: ``address`` None when no subscriber has the token."""

    address: str | None
    already: bool = False  # was unsubscribed before


def listing(url: str, status: str | None = None) -> list[Listed] | None:
    """Every subscriber (with `status`: only those), in the order they came."""
    opened = driver.connect(url)
    if opened is None:
        return None
    conn, dialect = opened
    sql = "SELECT address, name, status, themes, bounce_count FROM subscribers"
    sql += " WHERE status = ? ORDER BY id" if status else " ORDER BY id"
    try:
        if dialect == "sqlite":
            conn.execute("PRAGMA query_only=ON")
            conn.execute("BEGIN")
        if not driver.at_head(conn, dialect):
            return None
        rows = _rows(conn, dialect, sql, *([status] if status else []))
        conn.rollback()
    except _errors(dialect):
        return None
    finally:
        conn.close()
    return [Listed(a, n or "", str(s), _themes(t), b or 0) for a, n, s, t, b in rows]


def unsubscribe(url: str, token: str, now: datetime) -> Unsubscribed | None:
    """Unsubscribe the owner of ``token`` (a well-formed one, compared in constant time)
    at ``now``; idempotent."""
    opened = driver.connect(url)
    if opened is None:
        return None
    conn, dialect = opened
    try:
        if dialect == "sqlite":
            conn.execute("BEGIN IMMEDIATE")  # waits its turn for the write lock
        if not driver.at_head(conn, dialect):
            return None
        found = _rows(conn, dialect, _BY_TOKEN, token)
        if not found or not hmac.compare_digest(found[0][3].encode(), token.encode()):
            conn.rollback()
            return Unsubscribed(None)
        sid, address, status, _ = found[0]
        if status == SubscriberStatus.UNSUBSCRIBED:
            conn.rollback()
            return Unsubscribed(address, already=True)
        left = now.astimezone(UTC)
        gone = str(SubscriberStatus.UNSUBSCRIBED)
        _rows(conn, dialect, _LEAVE, gone, _moment(left, dialect), sid)
        skipped, pending = str(DeliveryStatus.SKIPPED), str(DeliveryStatus.PENDING)
        _rows(conn, dialect, _SKIP, skipped, UNSUBSCRIBED_ERROR, sid, pending)
        conn.commit()
    except _errors(dialect):
        return None  # rolled back by close: the ordinary way says what is wrong
    finally:
        conn.close()
    log.info("unsubscribed subscriber #%d", sid)
    return Unsubscribed(address)


_BY_TOKEN = "SELECT id, address, status, token FROM subscribers WHERE token = ?"
_LEAVE = "UPDATE subscribers SET status = ?, unsubscribed_at = ? WHERE id = ?"
_SKIP = "UPDATE deliveries SET status = ?, last_error = ? WHERE subscriber_id = ? AND status = ?"


def _rows(conn: Any, dialect: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    try:
        cur.execute(sql.replace("?", "%s") if dialect == "postgresql" else sql, params)
        return [tuple(row) for row in cur.fetchall()] if cur.description else []
    finally:
        cur.close()


def _errors(dialect: str) -> type[Exception]:
    if dialect == "sqlite":
        import sqlite3

        return sqlite3.Error
    import psycopg

    return psycopg.Error


def _themes(value: str | list[str] | None) -> tuple[str, ...]:
    """The stored JSON list of slugs (SQLite: its text; psycopg decodes it)."""
    if isinstance(value, str):
        value = json.loads(value)
    return tuple(value or ())


def _moment(value: datetime, dialect: str) -> datetime | str:
    """A moment as the state stores it (SQLite: UTC text, as SQLAlchemy writes it)."""
    if dialect == "sqlite":
        return value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value
