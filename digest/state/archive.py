"""The archive search: published papers found through the database's full-text index,
best match first. Session in, plain values out.

The index (migration 0018) holds the title and abstract of every published paper and is
kept current by the database itself whenever a paper is published (or its text
completed afterwards): on SQLite an FTS5 table ``paper_search`` filled by triggers on
``papers``, on PostgreSQL a stored ``papers.search_vector`` (a tsvector computed only
once ``published_in`` is set) under a GIN index. Ingesting a dump never touches it.

A query is text typed by anybody: it is never handed to the full-text grammar as it
came. It is cut into words (at most eight); each word must match, as a phrase of its
letter-and-digit runs, the last run as a prefix ("transform" finds "transformers",
"GPT-4" finds "GPT-4"); a word with no letter or digit is dropped. Every run is quoted
by us, so ``"``, ``*``, ``NEAR``, ``-``, ``OR`` or an unbalanced quote are only text.
Case and accents do not matter on SQLite (unicode61, diacritics removed); on PostgreSQL
case does not, accents do (the ``simple`` configuration, no unaccent extension needed).
Ranked by bm25 (SQLite) or ts_rank (PostgreSQL), a match in the title weighing more,
then the newest issue first. Ranking every match of a word found in most of a large
archive costs tens of milliseconds, so only the newest are ranked (RANKED papers on
SQLite, ids coming in publishing order, unless they hold fewer matches than a page; the
newest RANKED matches on PostgreSQL): the best of the recent papers.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Text, func, literal_column, select, text
from sqlalchemy.orm import Session

from digest.state.models import Digest, DigestItem, Paper, UTCDateTime

__all__ = ["MAX_WORDS", "RANKED", "Hit", "search", "words_of"]

MAX_WORDS = 8
RANKED = 2000  # matches ranked: the newest; a word in most of the archive costs no more
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


def search(session: Session, query: str, limit: int = 50) -> list[Hit]:
    """Published papers matching every word of ``query``, best match first."""
    words = words_of(query)
    if not words:
        return []
    rows: Any
    if session.get_bind().dialect.name == "sqlite":
        rows = _sqlite(session, words, limit)
    else:
        found = _postgresql(words, limit)
        rows = session.execute(
            select(
                Paper.title, Paper.abstract, Digest.issue, DigestItem.section,
                Digest.published_at, DigestItem.position,
            )
            .join(found, found.c.id == Paper.id)
            .join(DigestItem, DigestItem.paper_id == Paper.id)
            .join(Digest, Digest.id == DigestItem.digest_id)
            .order_by(found.c.rank.desc(), Digest.issue.desc(), DigestItem.position)
        )  # fmt: skip
    return [Hit(t, a, i, s, p, pos + 1) for t, a, i, s, p, pos in rows]


_SQLITE = """WITH found AS (
 SELECT rowid AS id, -bm25(paper_search, 10.0, 1.0) AS rank FROM paper_search
 WHERE paper_search MATCH :match {window} ORDER BY rank DESC LIMIT :limit)
SELECT p.title, p.abstract, d.issue, i.section, d.published_at, i.position
FROM found JOIN papers AS p ON p.id = found.id
JOIN digest_items AS i ON i.paper_id = p.id
JOIN digests AS d INDEXED BY ix_digests_search ON d.id = i.digest_id
ORDER BY found.rank DESC, d.issue DESC, i.position"""
# the best matches (bm25: lower is better) ranked before any join; a hit's issue number
# and date from ix_digests_search (a digest's row holds its web copy before published_at:
# megabytes of overflow pages read per hit otherwise). First among the newest RANKED
# papers (a rowid range FTS5 seeks to), then, when they hold fewer than the page, all.
_NEWEST = "AND rowid >= (SELECT max(rowid) FROM paper_search) - :ranked"
_COLUMNS = {
    "title": Text, "abstract": Text, "issue": Integer, "section": Text,
    "published_at": UTCDateTime, "position": Integer,
}  # fmt: skip
_SQLITE_NEWEST = text(_SQLITE.format(window=_NEWEST)).columns(**_COLUMNS)
_SQLITE_ALL = text(_SQLITE.format(window="")).columns(**_COLUMNS)


def _sqlite(session: Session, words: list[tuple[str, list[str]]], limit: int) -> list[Any]:
    """FTS5: each word a quoted phrase with a prefix star: "gpt 4"* AND "model"*."""
    match = " AND ".join('"' + " ".join(runs) + '"*' for _, runs in words)
    rows = session.execute(_SQLITE_NEWEST, {"match": match, "ranked": RANKED, "limit": limit})
    found = list(rows)
    if len(found) < limit:
        found = list(session.execute(_SQLITE_ALL, {"match": match, "limit": limit}))
    return found


def _postgresql(words: list[tuple[str, list[str]]], limit: int) -> Any:
    """tsquery: each word is PostgreSQL's own phrase of it (phraseto_tsquery, which
    parses "GPT-4" or "2401.12345" as the document was) or our prefix phrase of its runs
    ('gpt' <-> '4':*, runs being letters and digits only, so the quoting is safe); the
    words joined with &&. The ``limit`` best (ts_rank) of the newest RANKED matches."""
    simple: Any = literal_column("'simple'::regconfig")
    query = None
    for word, runs in words:
        prefix = " <-> ".join(f"'{run}'" for run in runs) + ":*"
        either = func.phraseto_tsquery(simple, word).op("||")(func.to_tsquery(simple, prefix))
        query = either if query is None else query.op("&&")(either)
    vector: Any = literal_column("papers.search_vector")
    newest = (
        select(Paper.id, vector.label("vector"))
        .where(vector.op("@@")(query))
        .order_by(Paper.id.desc())
        .limit(RANKED)
        .subquery("newest")
    )
    rank = func.ts_rank(newest.c.vector, query)
    return (
        select(newest.c.id, rank.label("rank")).order_by(rank.desc()).limit(limit).subquery("found")
    )
