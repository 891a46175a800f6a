"""The public URL layout under `digest.base_url`, built here and nowhere else: an issue's
web copy and the anchor of a paper in it (the feeds' GUIDs, the e-mail's links, the
section feeds, the search page and the web server all use these), the pages of older
issues, and the slug of a section's name (its feed's and its page's file name)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

__all__ = [
    "ISSUES_PER_PAGE",
    "abstract_anchor",
    "abstract_url",
    "archive_page_of",
    "archive_page_path",
    "archive_page_url",
    "feedback_key",
    "feedback_path",
    "feedback_url",
    "issue_path",
    "issue_url",
    "paper_anchor",
    "paper_url",
    "private_feed_path",
    "private_feed_url",
    "section_feed_url",
    "section_page_path",
    "section_page_url",
    "slugify",
]

ISSUES_PER_PAGE = 50  # issues on the index, and on each page of older issues


def issue_path(issue: int) -> str:
    """The web copy of an issue, relative to public/ (and to base_url)."""
    return f"archive/{issue}.html"


def issue_url(base_url: str, issue: int) -> str:
    """The absolute URL of an issue's web copy (also its stable feed GUID)."""
    return f"{base_url.rstrip('/')}/{issue_path(issue)}"


def paper_anchor(number: int) -> str:
    """The HTML id of the `number`-th paper (1-based, in the issue's order) in a web copy."""
    return f"p-{number}"


def paper_url(base_url: str, issue: int, number: int) -> str:
    """The absolute URL of one paper in an issue's web copy."""
    return f"{issue_url(base_url, issue)}#{paper_anchor(number)}"


def abstract_anchor(anchor: str) -> str:
    """The HTML id of a paper's full abstract on the web copy (inside its <details>, which
    browsers open when the address names it)."""
    return f"{anchor}-abstract"


def abstract_url(paper_url: str) -> str:
    """Where "Read the full abstract" leads: the paper's abstract on its issue's web copy."""
    head, _, anchor = paper_url.rpartition("#")
    return f"{head}#{abstract_anchor(anchor)}"


def section_feed_url(base_url: str, slug: str) -> str:
    """The absolute URL of one section's (area's) RSS feed."""
    return f"{base_url.rstrip('/')}/themes/{slug}.xml"


def section_page_path(slug: str) -> str:
    """One section's (area's) page of recent papers, relative to public/ (and to base_url)."""
    return f"sections/{slug}.html"


def section_page_url(base_url: str, slug: str) -> str:
    """The absolute URL of one section's page: what the index's chips and the section's
    feed (its channel <link>) point to."""
    return f"{base_url.rstrip('/')}/{section_page_path(slug)}"


def archive_page_of(issue: int) -> int:
    """The page of older issues that lists ``issue``: page 1 holds issues 1-50, page 2
    issues 51-100, and so on, so a full page never changes."""
    return (issue - 1) // ISSUES_PER_PAGE + 1


def archive_page_path(page: int) -> str:
    """A page of older issues, relative to public/ (and to base_url)."""
    return f"archive/page-{page}.html"


def archive_page_url(base_url: str, page: int) -> str:
    return f"{base_url.rstrip('/')}/{archive_page_path(page)}"


FEEDBACK = ("more", "less")  # the two marks a reader can give a paper


def feedback_path(token: str, key: str, mark: str) -> str:
    """Where "more / less like this" of a paper leads, relative to base_url: the
    subscriber's token (in an e-mail, the same placeholder the unsubscribe link has),
    the paper's key with its spaces as "-" (a key never holds "-", "/" or ";": it folds
    punctuation to spaces) and the rest percent-encoded, and "more" or "less"."""
    assert mark in FEEDBACK, mark
    return f"feedback/{token}/{quote(key.replace(' ', '-'), safe='')}/{mark}"


def feedback_url(base_url: str, token: str, key: str, mark: str) -> str:
    return f"{base_url.rstrip('/')}/{feedback_path(token, key, mark)}"


def feedback_key(segment: str) -> str:
    """The paper key a feedback link names (the path segment, already percent-decoded)."""
    return segment.replace("-", " ")


def private_feed_path(feed_token: str) -> str:
    """A reader's private feed, relative to base_url (its token is not the unsubscribe
    token)."""
    return f"feeds/{feed_token}.xml"


def private_feed_url(base_url: str, feed_token: str) -> str:
    return f"{base_url.rstrip('/')}/{private_feed_path(feed_token)}"


def slugify(name: str) -> str:
    """A lowercase ASCII slug: "Mixture of experts" -> "mixture-of-experts"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:80].rstrip("-") or "section"
