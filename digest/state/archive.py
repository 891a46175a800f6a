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
then the newest issue first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Integer, func, literal_column, select, text
from sqlalchemy.orm import Session

from digest.state.models import Digest, DigestItem, Paper

__all__ = ["MAX_WORDS", "Hit", "search", "words_of"]

MAX_WORDS = 8
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
    dialect = session.get_bind().dialect.name
    ranked = _sqlite(words) if dialect == "sqlite" else _postgresql(words)
    rows = session.execute(ranked.limit(limit))
    return [Hit(t, a, i, s, p, pos + 1) for t, a, i, s, p, pos in rows]


def _columns() -> Any:
    return select(
        Paper.title, Paper.abstract, Digest.issue, DigestItem.section, Digest.published_at,
        DigestItem.position,
    )  # fmt: skip


def _sqlite(words: list[tuple[str, list[str]]]) -> Any:
    """FTS5: each word a quoted phrase with a prefix star: "gpt 4"* AND "model"*."""
    match = " AND ".join('"' + " ".join(runs) + '"*' for _, runs in words)
    found = (
        text(
            "SELECT rowid AS id, bm25(paper_search, 10.0, 1.0) AS rank"
            " FROM paper_search WHERE paper_search MATCH :match"
        )
        .bindparams(match=match)
        .columns(id=Integer, rank=Float)
        .subquery("found")
    )
    return (
        _columns()
        .join(found, found.c.id == Paper.id)
        .join(DigestItem, DigestItem.paper_id == Paper.id)
        .join(Digest, Digest.id == DigestItem.digest_id)
        .order_by(found.c.rank, Digest.issue.desc(), DigestItem.position)
    )


def _postgresql(words: list[tuple[str, list[str]]]) -> Any:
    """tsquery: each word is PostgreSQL's own phrase of it (phraseto_tsquery, which
    parses "GPT-4" or "2401.12345" as the document was) or our prefix phrase of its runs
    ('gpt' <-> '4':*, runs being letters and digits only, so the quoting is safe); the
    words joined with &&."""
    simple: Any = literal_column("'simple'::regconfig")
    query = None
    for word, runs in words:
        prefix = " <-> ".join(f"'{run}'" for run in runs) + ":*"
        either = func.phraseto_tsquery(simple, word).op("||")(func.to_tsquery(simple, prefix))
        query = either if query is None else query.op("&&")(either)
    vector: Any = literal_column("papers.search_vector")
    return (
        _columns()
        .join(DigestItem, DigestItem.paper_id == Paper.id)
        .join(Digest, Digest.id == DigestItem.digest_id)
        .where(vector.op("@@")(query))
        .order_by(func.ts_rank(vector, query).desc(), Digest.issue.desc(), DigestItem.position)
    )
