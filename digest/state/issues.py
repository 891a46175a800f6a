"""The published issues, as the public files and the web server need them: the issue
lines of the index and the archive pages, each issue's feed content, web copy and
sections, the archive search (archive.py, re-exported here), and the section-feed
queries (which slugs have papers, the newest papers of a slug). Session in, plain values
out.

Every section-feed query is an index seek (``digest_items (area_slug, digest_id)`` or
``(section_slug, digest_id)``), newest first, LIMIT size: the cost follows the number of
feeds and the feed size, never the papers published.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from digest.state import digests
from digest.state.archive import Hit, search
from digest.state.models import Digest, DigestItem, Paper

__all__ = [
    "FeedPaper",
    "Hit",
    "IssueLine",
    "area_slugs",
    "between",
    "feed_content",
    "issue_numbers",
    "issue_sections",
    "newest",
    "newest_papers",
    "search",
    "section_names",
    "slugs_of",
    "web_copy",
]


@dataclass(frozen=True)
class IssueLine:
    """A published issue without its rendered HTML (a line of the index or a page)."""

    issue: int
    subject: str
    published_at: datetime
    paper_count: int
    themes: tuple[str, ...]


def _line(d: Digest) -> IssueLine:
    return IssueLine(d.issue, d.subject, d.published_at, d.paper_count, tuple(d.themes))


def newest(session: Session, limit: int | None = None) -> list[IssueLine]:
    """The published issues, newest first (the ``limit`` newest, or all)."""
    return [_line(d) for d in digests.digests_newest_first(session, limit)]


def between(session: Session, first: int, last: int) -> list[IssueLine]:
    """The published issues numbered ``first`` to ``last``, newest first."""
    return [_line(d) for d in digests.digests_between(session, first, last)]


def issue_numbers(session: Session) -> list[int]:
    """Every published issue number, oldest first."""
    return digests.issue_numbers(session)


def web_copy(session: Session, issue: int) -> bytes | None:
    """The issue's web copy, UTF-8 encoded (as it is written to its file)."""
    return digests.web_copy(session, issue)


def feed_content(session: Session, issue: int) -> tuple[str | None, str]:
    """The issue's feed-entry HTML, and (only when that is missing, from before it was
    stored) its web copy to cut one from; "" when the feed HTML is there."""
    feed_html = session.scalar(select(Digest.feed_html).where(Digest.issue == issue))
    if feed_html:
        return feed_html, ""
    web = digests.web_copy(session, issue)
    return feed_html, web.decode("utf-8") if web else ""


def _loose_scan(column: str) -> Any:
    """A loose index scan: each step seeks the next value, so the distinct values cost one
    seek each instead of a pass over every published paper (SELECT DISTINCT reads them
    all)."""
    return text(
        "WITH RECURSIVE s(slug) AS ("
        f" SELECT min({column}) FROM digest_items"
        " UNION ALL"
        f" SELECT (SELECT min({column}) FROM digest_items WHERE {column} > s.slug)"
        " FROM s WHERE s.slug IS NOT NULL"
        ") SELECT slug FROM s WHERE slug IS NOT NULL"
    )


_SLUGS = _loose_scan("section_slug")
_AREAS = _loose_scan("area_slug")


def section_names(session: Session) -> dict[str, str]:
    """Every section slug ever published, in slug order, with the name its newest
    section had."""
    names = {}
    for slug in list(session.scalars(_SLUGS)):
        latest = (
            select(DigestItem.section)
            .where(DigestItem.section_slug == slug)
            .order_by(DigestItem.digest_id.desc(), DigestItem.position)
            .limit(1)
        )
        names[slug] = session.scalar(latest) or slug
    return names


def area_slugs(session: Session) -> set[str]:
    """Every area slug papers were published under (old slugs included)."""
    return set(session.scalars(_AREAS))


def slugs_of(session: Session, issues: Collection[int]) -> list[tuple[str, str]]:
    """(area slug, section slug) of the papers of these issues, each pair once."""
    if not issues:
        return []
    rows = session.execute(
        select(DigestItem.area_slug, DigestItem.section_slug)
        .join(Digest, Digest.id == DigestItem.digest_id)
        .where(Digest.issue.in_(list(issues)))
        .distinct()
    ).all()
    return [(r.area_slug, r.section_slug) for r in rows]


@dataclass(frozen=True)
class FeedPaper:
    """A published paper as a section feed lists it."""

    digest_id: int
    position: int  # in its issue, from 0
    name: str  # the section it printed under
    issue: int
    published_at: datetime
    title: str
    abstract: str


def newest_papers(
    session: Session, by: Literal["area", "section"], slug: str, size: int
) -> list[FeedPaper]:
    """The ``size`` newest papers stored under this area or section slug, newest issue
    first, then in the issue's order."""
    column = DigestItem.area_slug if by == "area" else DigestItem.section_slug
    rows = session.execute(
        select(
            DigestItem.digest_id,
            DigestItem.position,
            DigestItem.section,
            Digest.issue,
            Digest.published_at,
            Paper.title,
            Paper.abstract,
        )
        .join(Digest, Digest.id == DigestItem.digest_id)
        .join(Paper, Paper.id == DigestItem.paper_id)
        .where(column == slug)
        .order_by(DigestItem.digest_id.desc(), DigestItem.position)
        .limit(size)
    ).all()
    return [FeedPaper(*row) for row in rows]


def issue_sections(
    session: Session, issues: Collection[int] | None = None
) -> dict[int, list[tuple[str, str]]]:
    """(name, slug) of each issue's sections (of these ``issues``, or of all), in the
    issue's order, keyed by issue."""
    query = select(Digest.issue, DigestItem.section, DigestItem.section_slug).join(
        Digest, Digest.id == DigestItem.digest_id
    )
    if issues is not None:
        query = query.where(Digest.issue.in_(list(issues)))
    rows = session.execute(
        query.group_by(Digest.issue, DigestItem.section, DigestItem.section_slug).order_by(
            Digest.issue, func.min(DigestItem.position)
        )
    )
    out: dict[int, list[tuple[str, str]]] = {}
    for issue, name, slug in rows:
        out.setdefault(issue, []).append((name, slug))
    return out
