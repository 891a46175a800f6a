"""The state behind the per-section feeds: the most recent papers of each section slug.

Every published paper is stored with the name and slug of its section (``digest_items``),
so a section's feed is rebuilt from the state alone: a configured theme keeps its slug
(the slug of its name) from one digest to the next, and so does an automatic one that
gets the same name again.

Every query here is an index seek on ``digest_items (section_slug, digest_id)``: the
cost follows the number of sections and the feed size, never the papers published.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from digest.ingest.links import tidy_text
from digest.publish.feeds import ThemeEntry, ThemeFeed
from digest.state.models import Digest, DigestItem, Paper
from digest.urls import paper_url

__all__ = ["THEME_FEED_SIZE", "section_feeds", "section_names"]

THEME_FEED_SIZE = 50  # papers kept in each theme's feed


# A loose index scan: each step seeks the next slug, so the distinct slugs cost one seek
# each instead of a pass over every published paper (SELECT DISTINCT reads them all).
_SLUGS = text(
    "WITH RECURSIVE s(slug) AS ("
    " SELECT min(section_slug) FROM digest_items"
    " UNION ALL"
    " SELECT (SELECT min(section_slug) FROM digest_items WHERE section_slug > s.slug)"
    " FROM s WHERE s.slug IS NOT NULL"
    ") SELECT slug FROM s WHERE slug IS NOT NULL"
)


def section_names(session: Session) -> dict[str, str]:
    """Every slug ever published, in slug order, with the name its newest section had."""
    names = {}
    for slug in list(session.scalars(_SLUGS)):
        newest = (
            select(DigestItem.section)
            .where(DigestItem.section_slug == slug)
            .order_by(DigestItem.digest_id.desc(), DigestItem.position)
            .limit(1)
        )
        names[slug] = session.scalar(newest) or slug
    return names


def section_feeds(
    session: Session,
    base_url: str,
    slugs: Iterable[str] | None = None,
    size: int = THEME_FEED_SIZE,
) -> list[ThemeFeed]:
    """One feed per slug (of ``slugs``, or of every slug ever published), with its
    ``size`` most recent papers (newest issue first, then in the issue's order), named
    as its newest section was. Each feed is one indexed query (digest_items by slug,
    newest first, LIMIT size)."""
    feeds = []
    for slug in sorted(section_names(session) if slugs is None else set(slugs)):
        rows = session.execute(
            select(
                DigestItem.section.label("name"),
                DigestItem.position,
                Digest.issue,
                Digest.published_at,
                Paper.title,
                Paper.abstract,
            )
            .join(Digest, Digest.id == DigestItem.digest_id)
            .join(Paper, Paper.id == DigestItem.paper_id)
            .where(DigestItem.section_slug == slug)
            .order_by(DigestItem.digest_id.desc(), DigestItem.position)
            .limit(size)
        ).all()
        entries = tuple(
            ThemeEntry(
                title=r.title,
                abstract=tidy_text(r.abstract),
                url=paper_url(base_url, r.issue, r.position + 1),
                published_at=r.published_at,
                issue=r.issue,
            )
            for r in rows
        )
        if rows:
            feeds.append(ThemeFeed(slug, rows[0].name, entries))
    return feeds
