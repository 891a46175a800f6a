"""The archive search: published papers found through the database's full-text index,
best match first. A session or the state's pool in, plain values out.

The index (migration 0018) holds the title and abstract of every published paper and is
kept current by the database itself whenever a paper is published (or its text
completed afterwards): on SQLite an FTS5 table ``paper_search`` filled by triggers on
``papers``, on PostgreSQL a stored ``papers.search_vector`` (a tsvector computed only
once ``published_in`` is set) under a GIN index. Ingesting a dump never touches it.

A query is text typed by anybody: it is never handed to the full-text grammar as it
came. It is cut into words (at most eight); each word must match, as a phrase of its
letter-and-digit runs, the last run as a prefix ("transform" finds "transformers",
"GPT-4" finds "GPT-4"); a word with no letter or digit is dropped. Every run is quoted
by us (SQLite) or passed as a bound value (PostgreSQL), so ``"``, ``*``, ``NEAR``,
``-``, ``OR`` or an unbalanced quote are only text. Case and accents do not matter on
SQLite (unicode61, diacritics removed); on PostgreSQL case does not, accents do (the
``simple`` configuration, no unaccent extension needed).

Ranked by bm25 (SQLite) or ts_rank (PostgreSQL), a match in the title weighing more,
then the newest issue first. Ranking every match of a word found in most of a large
archive costs tens of milliseconds, so only the newest RANKED matches are ranked (the
index gives them newest first): the best of the recent papers.

A search is one statement of plain SQL on the driver's own connection (no ORM, no
statement built per query): `find` takes a connection of the state's pool for it and
runs it outside any transaction (one round trip on PostgreSQL, where it is prepared once
per connection and number of words); `search` runs the same statement in a session's
transaction.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from digest.state.db import translate

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from digest.state.db import Database

__all__ = ["MAX_WORDS", "RANKED", "Hit", "find", "refresh_statistics", "search", "words_of"]

MAX_WORDS = 8
RANKED = 300  # matches ranked: the newest; a word in most of the archive costs no more
_RUN = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Hit:
    title: str
    abstract: str
    issue: int
    section: str
    published_at: datetime
    position: int  # the paper's place in its issue, 1-based (the web copy's anchor p-N)


def words_of(query: str) -> list[tuple[str, list[str]]]:
    """(word, its letter-and-digit runs) of each searchable word, at most MAX_WORDS."""
    out = []
    for word in unicodedata.normalize("NFC", query.replace("\x00", " ")).split():
        runs = _RUN.findall(word)
        if runs:
            out.append((word, runs))
    return out[:MAX_WORDS]


def refresh_statistics(database: Database) -> None:
    """PostgreSQL: update the planner's statistics of the tables a search reads, once an
    issue is stored. Until autovacuum's analyze (a minute or more after a big publish)
    the planner knew nothing of the new rows and planned a search as a scan of every
    paper: 43 ms a query at 10,000 papers against 0.1 ms after it. SQLite plans by
    its indexes alone: nothing to do."""
    if database.dialect_name != "postgresql":
        return
    with database.ready().engine.connect() as conn:
        conn.execute(text("ANALYZE papers, digest_items, digests"))
        conn.commit()


def find(database: Database, query: str, limit: int = 50) -> list[Hit]:
    """Published papers matching every word of ``query``, best match first: one
    statement on a connection of the state's pool, in no transaction of its own."""
    words = words_of(query)
    if not words:
        return []
    engine = database.ready().engine
    pooled = engine.raw_connection()
    try:
        conn: Any = pooled.driver_connection
        if engine.dialect.name == "sqlite":
            return _hits(_sqlite(conn, words, limit, engine.url.database))
        conn.autocommit = True  # one statement: no BEGIN and ROLLBACK round trips
        try:
            return _hits(_postgresql(conn, words, limit))
        finally:
            if conn.broken:
                pooled.invalidate()  # the server went away: the pool opens a new one
            else:
                conn.autocommit = False
    finally:
        pooled.close()


def search(session: Session, query: str, limit: int = 50) -> list[Hit]:
    """`find`, in the transaction of ``session``."""
    words = words_of(query)
    if not words:
        return []
    connection = session.connection()
    conn: Any = connection.connection.driver_connection
    if connection.dialect.name == "sqlite":
        return _hits(_sqlite(conn, words, limit, connection.engine.url.database))
    return _hits(_postgresql(conn, words, limit))


def _hits(rows: list[Any]) -> list[Hit]:
    return [Hit(t, a, i, s, _utc(p), pos + 1) for t, a, i, s, p, pos in rows]


def _utc(value: datetime | str) -> datetime:
    """A stored moment as an aware UTC datetime (SQLite holds it as text, no zone)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_SQLITE = """WITH newest AS (
 SELECT rowid AS id, bm25(paper_search, 10.0, 1.0) AS rank FROM paper_search
 WHERE paper_search MATCH ? ORDER BY rowid DESC LIMIT ?),
found AS (SELECT id, rank FROM newest ORDER BY rank LIMIT ?)
SELECT p.title, p.abstract, d.issue, i.section, d.published_at, i.position
FROM found JOIN papers AS p ON p.id = found.id
JOIN digest_items AS i ON i.paper_id = p.id
JOIN digests AS d INDEXED BY ix_digests_search ON d.id = i.digest_id
ORDER BY found.rank, d.issue DESC, i.position"""
# FTS5 gives the matches newest (highest rowid) first and stops at RANKED; the best of
# them (bm25: lower is better) are ranked before any join; a hit's issue number and date
# from ix_digests_search (a digest's row holds its web copy before published_at:
# megabytes of overflow pages read per hit otherwise).


def _sqlite(
    conn: sqlite3.Connection, words: list[tuple[str, list[str]]], limit: int, path: str | None
) -> list[Any]:
    """FTS5: each word a quoted phrase with a prefix star: "gpt 4"* AND "model"*."""
    match = " AND ".join('"' + " ".join(runs) + '"*' for _, runs in words)
    try:
        return conn.execute(_SQLITE, (match, RANKED, limit)).fetchall()
    except sqlite3.Error as exc:
        known = translate(exc, path)
        if known is not None:
            raise known from None
        raise


def _postgresql_sql(n: int) -> str:
    """The statement for ``n`` words: each word is PostgreSQL's own phrase of it
    (phraseto_tsquery, which parses "GPT-4" or "2401.12345" as the document was) or our
    prefix phrase of its runs ('gpt' <-> '4':*, runs being letters and digits only, so
    the quoting is safe), both bound values; the words joined with &&. The tsquery is
    made once (an InitPlan); the ``limit`` best (ts_rank) of the newest RANKED matches,
    and then only their rows are read."""
    word = "(phraseto_tsquery('simple', %s) || to_tsquery('simple', %s))"
    return f"""WITH q AS MATERIALIZED (SELECT {" && ".join([word] * n)} AS q),
newest AS (
 SELECT id, search_vector AS vector FROM papers WHERE search_vector @@ (SELECT q FROM q)
 ORDER BY id DESC LIMIT %s),
found AS (
 SELECT id, ts_rank(vector, (SELECT q FROM q)) AS rank FROM newest
 ORDER BY rank DESC LIMIT %s)
SELECT p.title, p.abstract, d.issue, i.section, d.published_at, i.position
FROM found JOIN papers AS p ON p.id = found.id
JOIN digest_items AS i ON i.paper_id = p.id
JOIN digests AS d ON d.id = i.digest_id
ORDER BY found.rank DESC, d.issue DESC, i.position"""


_POSTGRESQL = [_postgresql_sql(n) for n in range(MAX_WORDS + 1)]


def _postgresql(conn: Any, words: list[tuple[str, list[str]]], limit: int) -> list[Any]:
    params: list[Any] = []
    for word, runs in words:
        params += [word, " <-> ".join(f"'{run}'" for run in runs) + ":*"]
    with conn.cursor() as cur:
        cur.execute(_POSTGRESQL[len(words)], [*params, RANKED, limit], prepare=True)
        return cur.fetchall()
