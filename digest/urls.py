"""The public URL layout under `digest.base_url`, built here and nowhere else: an issue's
web copy and the anchor of a paper in it (the feeds' GUIDs, the e-mail's links, the
section feeds, the search page and the web server all use these)."""

from __future__ import annotations

__all__ = ["issue_path", "issue_url", "paper_anchor", "paper_url", "section_feed_url"]


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


def section_feed_url(base_url: str, slug: str) -> str:
    """The absolute URL of one section's (area's) RSS feed."""
    return f"{base_url.rstrip('/')}/themes/{slug}.xml"
