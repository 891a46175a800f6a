"""Which pages of older issues to write: the index lists the newest ISSUES_PER_PAGE
issues and links to the page of the issues just before them; page k lists issues
(k-1)*50+1 to k*50 and links to its neighbours.

A page is only made once every issue on it is published and the index no longer lists
the newest of them, so a page is always full and never changes, but for its "newer"
link (the index, until the page after it is made). Publishing therefore writes the
missing pages and rewrites the newest two (a no-op when they are unchanged), whatever
the number of issues before: the cost follows the page size, not the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from digest.urls import ISSUES_PER_PAGE, archive_page_of, archive_page_path, archive_page_url

__all__ = ["PagePlan", "index_older_url", "pages_to_write"]


@dataclass(frozen=True)
class PagePlan:
    page: int
    first: int  # issue numbers on the page
    last: int
    newer_url: str  # the next page, or the index
    older_url: str | None  # the page before, none on page 1


def _last_page(newest_issue: int) -> int:
    """The newest page that is made: the one holding the issue just older than the
    index's oldest (0: the index lists every issue)."""
    oldest_listed = newest_issue - ISSUES_PER_PAGE + 1
    return archive_page_of(oldest_listed - 1) if oldest_listed > 1 else 0


def index_older_url(base_url: str, newest_issue: int) -> str | None:
    """The index's link to older issues (none while it lists them all)."""
    last = _last_page(newest_issue)
    return archive_page_url(base_url, last) if last else None


def pages_to_write(
    public: Path, base_url: str, newest_issue: int, *, every: bool = False
) -> list[PagePlan]:
    """The pages missing under ``public`` and the newest two (``every``: all), newest
    first."""
    last = _last_page(newest_issue)
    index = base_url.rstrip("/") + "/"
    return [
        PagePlan(
            page=k,
            first=(k - 1) * ISSUES_PER_PAGE + 1,
            last=k * ISSUES_PER_PAGE,
            newer_url=archive_page_url(base_url, k + 1) if k < last else index,
            older_url=archive_page_url(base_url, k - 1) if k > 1 else None,
        )
        for k in range(last, 0, -1)
        if every or k >= last - 1 or not (public / archive_page_path(k)).exists()
    ]
