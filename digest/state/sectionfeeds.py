"""The state behind the per-theme feeds: the most recent papers of each section slug.

Every published paper is stored with the name and slug of its section (``digest_items``),
so a theme's feed is rebuilt from the state alone: a configured theme keeps its slug (the
slug of its name) from one digest to the next, and so does an automatic one that gets
the same name again.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.ingest.links import tidy_text
from digest.publish.feeds import ThemeEntry, ThemeFeed
from digest.state.models import Digest, DigestItem, Paper
from digest.urls import paper_url

__all__ = ["THEME_FEED_SIZE", "section_feeds"]

THEME_FEED_SIZE = 50  # papers kept in each theme's feed


def section_feeds(session: Session, base_url: str, size: int = THEME_FEED_SIZE) -> list[ThemeFeed]:
    """One feed per slug ever published, with its ``size`` most recent papers (newest
    issue first, then in the issue's order), named as its newest section was. Each
    feed is one indexed query (digest_items by slug, newest first, LIMIT size): the
    cost follows the number of sections, not every paper ever published."""
    slugs = session.scalars(select(DigestItem.section_slug).distinct().order_by("section_slug"))
    feeds = []
    for slug in list(slugs):
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
        feeds.append(ThemeFeed(slug, rows[0].name, entries))
    return feeds
