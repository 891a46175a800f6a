"""The state behind the per-topic feeds (``themes/<slug>.xml``): the most recent papers of
each area of the vocabulary, at every level, and of each other section slug.

Every published paper is stored with its own area and the name and slug of the section it
printed under (``digest_items``), so each feed is rebuilt from the state alone:

- an area's feed holds the papers whose area is that area or any area below it (and
  papers stored under an old slug of one of those, from before a rename or merge);
  it is also written under each of the area's old slugs, so old feed links keep working;
- a section slug the vocabulary does not know (a configured theme, a discovered topic)
  has the feed of that section's papers, as it always had.

The queries are state.issues' (one index seek per slug a feed covers, newest first,
LIMIT size): the cost follows the number of feeds, the areas under each and the feed
size, never the papers published.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable

from digest.ingest.links import tidy_text
from digest.publish.feeds import ThemeEntry, ThemeFeed
from digest.sections.areas import Vocabulary
from digest.state import issues as published
from digest.state.db import Session
from digest.state.issues import FeedPaper
from digest.urls import paper_url

__all__ = ["THEME_FEED_SIZE", "feed_names", "section_feeds", "section_names", "touched"]

THEME_FEED_SIZE = 50  # papers kept in each theme's feed


def section_names(session: Session) -> dict[str, str]:
    """Every section slug ever published, in slug order, with the name its newest
    section had."""
    return published.section_names(session)


def _areas_of(vocabulary: Vocabulary, slugs: Iterable[str]) -> set[str]:
    """The areas (current slugs) these stored slugs name, with every area above them."""
    out: set[str] = set()
    for slug in slugs:
        area = vocabulary.resolve(slug)
        if area is not None and area in vocabulary.by_slug:
            out.add(area)
            out.update(vocabulary.ancestors(area))
    return out


def feed_names(session: Session, vocabulary: Vocabulary) -> dict[str, str]:
    """Every feed with papers, slug -> name: each area that has papers (its own or below
    it) and each other section slug ever published."""
    sections = section_names(session)
    stored = published.area_slugs(session) | set(sections)
    names = {a: vocabulary.by_slug[a].name for a in _areas_of(vocabulary, stored)}
    for slug, name in sections.items():
        if vocabulary.resolve(slug) not in vocabulary.by_slug:
            names.setdefault(slug, name)
    return dict(sorted(names.items()))


def touched(session: Session, vocabulary: Vocabulary, issues: Collection[int]) -> set[str]:
    """The feeds that papers of these issues are in: their areas and every area above,
    and their sections the vocabulary does not know."""
    rows = published.slugs_of(session, issues)
    out = _areas_of(vocabulary, [area for area, _ in rows] + [section for _, section in rows])
    out |= {section for _, section in rows if vocabulary.resolve(section) is None}
    return out


def _covered(vocabulary: Vocabulary, slug: str) -> list[str]:
    """The stored area slugs an area's feed takes: it and every area below it, with their
    old slugs."""
    below = vocabulary.descendants(slug)
    return sorted({*below, *(alias for a in below for alias in vocabulary.by_slug[a].aliases)})


def _newest_first(row: FeedPaper) -> tuple[int, int]:
    return (-row.digest_id, row.position)


def section_feeds(
    session: Session,
    base_url: str,
    vocabulary: Vocabulary,
    slugs: Iterable[str] | None = None,
    size: int = THEME_FEED_SIZE,
) -> list[ThemeFeed]:
    """One feed per slug (of ``slugs``, or of every feed with papers), with its ``size``
    most recent papers (newest issue first, then in the issue's order); an area's feed
    again under each of its old slugs. Each feed is one indexed query per slug it covers
    (newest first, LIMIT size), merged."""
    feeds = []
    for slug in sorted(feed_names(session, vocabulary) if slugs is None else set(slugs)):
        area = vocabulary.by_slug.get(slug)
        if area is not None:
            covered = _covered(vocabulary, slug)
            runs = [published.newest_papers(session, "area", s, size) for s in covered]
        else:
            runs = [published.newest_papers(session, "section", slug, size)]
        rows = list(heapq.merge(*runs, key=_newest_first))[:size]
        if not rows:
            continue
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
        name = area.name if area is not None else rows[0].name
        feeds.append(ThemeFeed(slug, name, entries))
        if area is not None:
            feeds += [ThemeFeed(alias, name, entries) for alias in area.aliases]
    return feeds
