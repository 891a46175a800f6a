"""The public files, kept in step with the state: each issue's web copy, the index, the
pages of older issues, the feeds, and each section's feed and page.

An issue's web copy and a full page of older issues never change, and a section's feed
changes only when an issue has papers in it, so only those are read and written: the cost
of `write` is bounded by the page and feed sizes and by the issues published since the
files were last written, not by the history. Which issue that was, and under which title
and base URL, is kept in one meta row, set only once every file is written; a new title or
base URL (or no row: files of an older version) rewrites every page and feed once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from digest.config import Settings
from digest.publish.feeds import (
    FeedIssue,
    FeedSite,
    ThemeFeed,
    feed_fragment,
    feed_summary,
    write_feeds,
    write_theme_feeds,
)
from digest.publish.pages import index_older_url, pages_to_write
from digest.publish.public import write_public
from digest.publish.sectionfeeds import feed_names, section_feeds, touched
from digest.render.renderer import Renderer
from digest.render.viewmodel import IssueSummary
from digest.sections.areas import Vocabulary, bundled
from digest.state import db, store
from digest.state import issues as published
from digest.state.db import Session
from digest.state.issues import IssueLine
from digest.urls import (
    ISSUES_PER_PAGE,
    archive_page_path,
    issue_path,
    issue_url,
    section_feed_url,
    section_page_path,
    section_page_url,
)

__all__ = ["SiteFiles"]

# "<sha256 of the title and base URL> <the newest issue whose files are all written>"
WRITTEN_KEY = "public_files"
FILES_VERSION = "gz"  # what the files written hold beyond their text: a .gz beside each


class SiteFiles:
    def __init__(
        self,
        settings: Settings,
        renderer: Renderer,
        session: Callable[[], AbstractContextManager[Session]],
        vocabulary: Vocabulary | None = None,
    ) -> None:
        self.settings, self.renderer, self.session = settings, renderer, session
        self.vocabulary = vocabulary or bundled()
        self.public = settings.public_dir
        self.base = settings.base_url
        # FILES_VERSION: files written before each had its .gz are all written once more
        mark = f"{settings.digest.title}\n{self.base}\n{FILES_VERSION}"
        self.mark = hashlib.sha256(mark.encode()).hexdigest()

    def write(self) -> list[Path]:
        """Write what is missing or changed; returns the files that changed."""
        s = self.settings
        with self.session() as session:
            numbers = published.issue_numbers(session)
            newest_issue = numbers[-1] if numbers else 0
            through = self._written_through(session, newest_issue)
            changed = self._issue_copies(session, numbers)
            changed += self._pages(session, newest_issue, every=through is None)
            names = feed_names(session, self.vocabulary)
            stale = self._stale_feeds(session, names, through, newest_issue)
            area_feeds = section_feeds(session, self.base, self.vocabulary, stale)
            newest = published.newest(session, max(ISSUES_PER_PAGE, s.digest.feed_size))
            feed_items = [self._feed_issue(session, d) for d in newest[: s.digest.feed_size]]
            listed = self._summaries(session, newest[:ISSUES_PER_PAGE])
        areas = sorted(
            ((name, section_page_url(self.base, slug)) for slug, name in names.items()),
            key=lambda a: a[0].casefold(),
        )
        index = self.renderer.index_html(
            s.digest.title,
            self.base,
            f"{self.base}/feed.xml",
            listed,
            areas,
            total=len(numbers),
            older_url=index_older_url(self.base, newest_issue),
        )
        if write_public(self.public / "index.html", index):
            changed.append(self.public / "index.html")
        site = FeedSite(s.digest.title, self.base)
        changed += write_feeds(self.public, site, feed_items)
        changed += write_theme_feeds(self.public, site, area_feeds)
        changed += self._section_pages(area_feeds)
        with self.session() as session:  # only once every file above is written
            db.begin_write(session)  # read-then-write: take the write lock first (SQLite)
            store.set_meta(session, WRITTEN_KEY, f"{self.mark} {newest_issue}")
            session.commit()
        return changed

    def _written_through(self, session: Session, newest_issue: int) -> int | None:
        """The newest issue whose files were all written under this title and base URL
        (None: rewrite everything)."""
        mark, _, through = (store.get_meta(session, WRITTEN_KEY) or "").partition(" ")
        if mark != self.mark or not through.isdigit() or int(through) > newest_issue:
            return None
        return int(through)

    def _issue_copies(self, session: Session, numbers: Sequence[int]) -> list[Path]:
        """The web copy of every issue that has none (or no .gz of it) on disk (one
        directory read)."""
        on_disk = _names_in(self.public / "archive")
        changed = []
        for number in numbers:
            path = self.public / issue_path(number)
            if path.name not in on_disk or f"{path.name}.gz" not in on_disk:
                html = published.web_copy(session, number)
                if html is not None and write_public(path, html):
                    changed.append(path)
        return changed

    def _pages(self, session: Session, newest_issue: int, *, every: bool) -> list[Path]:
        changed = []
        for plan in pages_to_write(self.public, self.base, newest_issue, every=every):
            digests = published.between(session, plan.first, plan.last)
            html = self.renderer.archive_page_html(
                self.settings.digest.title,
                self.base,
                f"{self.base}/feed.xml",
                self._summaries(session, digests),
                span=(plan.first, plan.last),
                newer_url=plan.newer_url,
                older_url=plan.older_url,
            )
            if write_public(self.public / archive_page_path(plan.page), html):
                changed.append(self.public / archive_page_path(plan.page))
        return changed

    def _stale_feeds(
        self, session: Session, names: dict[str, str], through: int | None, newest_issue: int
    ) -> set[str]:
        """The feeds that must be written: those with papers in an issue after ``through``
        (an area's paper makes every area above it stale too), and those with a file
        missing on disk (all of them, when ``through`` is None)."""
        if through is None:
            return set(names)
        feeds, pages = _names_in(self.public / "themes"), _names_in(self.public / "sections")
        stale = {
            slug
            for slug in names
            if not {f"{s}.xml" for s in (slug, *self._aliases(slug))} <= feeds
            or f"{slug}.html" not in pages
        }
        since = range(through + 1, newest_issue + 1)
        return stale | touched(session, self.vocabulary, since)

    def _aliases(self, slug: str) -> tuple[str, ...]:
        area = self.vocabulary.by_slug.get(slug)
        return area.aliases if area is not None else ()

    def _section_pages(self, feeds: Sequence[ThemeFeed]) -> list[Path]:
        """sections/<slug>.html of each section whose feed is written: the same papers,
        for a person (the index's chips and the feed's channel <link> point here)."""
        changed = []
        for feed in feeds:
            html = self.renderer.section_page_html(
                self.settings.digest.title,
                self.base,
                feed.name,
                section_feed_url(self.base, feed.slug),
                feed.entries,
            )
            path = self.public / section_page_path(feed.slug)
            if write_public(path, html):
                changed.append(path)
        return changed

    def _summaries(self, session: Session, digests: Sequence[IssueLine]) -> list[IssueSummary]:
        """The index lines of these digests, each with its sections' feeds."""
        sections = published.issue_sections(session, [d.issue for d in digests])
        return [
            IssueSummary(
                issue=d.issue,
                subject=d.subject,
                published_at=d.published_at,
                paper_count=d.paper_count,
                themes=tuple(d.themes),
                web_url=issue_url(self.base, d.issue),
                section_pages=tuple(
                    (name, section_page_url(self.base, slug))
                    for name, slug in sections.get(d.issue, [])
                ),
            )
            for d in digests
        ]

    def _feed_issue(self, session: Session, d: IssueLine) -> FeedIssue:
        feed_html, web_html = published.feed_content(session, d.issue)
        return FeedIssue(
            issue=d.issue,
            subject=d.subject,
            published_at=d.published_at,
            html=feed_html or feed_fragment(web_html),
            summary=feed_summary(d.subject, d.themes),
            url=issue_url(self.base, d.issue),
            themes=tuple(d.themes),
        )


def _names_in(folder: Path) -> set[str]:
    """The names in a folder (one directory read, not a stat per file); none if absent."""
    try:
        with os.scandir(folder) as entries:
            return {entry.name for entry in entries}
    except FileNotFoundError:
        return set()
