"""What a reader follows from a paper: where to read it (arXiv, else its own page, else an
arXiv title search), its one-line summary, and the URLs of an abstract turned into links.

Dump text is data: it is escaped before any markup is added, and only http(s) URLs
become links (``javascript:`` and the like never match).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import quote_plus

from markupsafe import Markup, escape

from digest.ingest.links import URL_RE, Link, trim_url
from digest.text import ELLIPSIS, sentences, truncate

__all__ = ["ARXIV_SEARCH", "LINK_REL", "after_summary", "first_sentence", "linkify", "read_link"]

_ARXIV_URL = re.compile(r"arxiv\.org/(?:abs|pdf|html)/(\d{4}\.\d{4,5})(?:v\d+)?", re.IGNORECASE)
_ARXIV_ID = re.compile(r"\barXiv\s*:\s*(\d{4}\.\d{4,5})(?:v\d+)?\b", re.IGNORECASE)
_ARXIV = re.compile("arxiv", re.IGNORECASE)  # what both of them name, matched as they do
LINK_REL = "nofollow noopener"
ARXIV_SEARCH = "https://arxiv.org/search/?"


def arxiv_id(abstract: str, links: Sequence[Link]) -> str | None:
    """The arXiv id an abstract or its links name (``2403.01234``), if any."""
    for link in links:
        if match := _ARXIV_URL.search(link.url):
            return match.group(1)
    if not _ARXIV.search(abstract):  # one scan, not two, for the many that name none
        return None
    match = _ARXIV_URL.search(abstract) or _ARXIV_ID.search(abstract)
    return match.group(1) if match else None


def read_link(title: str, abstract: str, links: Sequence[Link]) -> tuple[str, str]:
    """(url, label) of where the paper can be read: its arXiv page when an id is named,
    else its project page or code, else an arXiv search for its title."""
    ident = arxiv_id(abstract, links)
    if ident:
        return f"https://arxiv.org/abs/{ident}", "arXiv"
    for kind in ("project", "code"):
        for link in links:
            if link.kind == kind and not _ARXIV_URL.search(link.url):
                return link.url, "Project page" if kind == "project" else "Code"
    # urlencode({"query": ..., "searchtype": "title"}), without its generic steps
    query = "query=" + quote_plus(" ".join(title.split())) + "&searchtype=title"
    return ARXIV_SEARCH + query, "Find on arXiv"


def first_sentence(text: str, limit: int = 240) -> str:
    """The first sentence of ``text`` (whitespace folded), at most about ``limit`` chars."""
    parts = sentences(text, initials=False)  # "e.g. Y. Then": Y is a word, not an initial
    if not parts:
        return ""
    return truncate(parts[0], limit)[0]


def after_summary(abstract: str, summary: str) -> str:
    """The abstract without its opening sentence when that sentence is the summary shown
    above it (so the page does not say it twice); else the abstract as it is."""
    lead = summary.strip()
    if not lead or lead.endswith(ELLIPSIS):
        return abstract
    flat = " ".join(abstract.split())
    if not flat.startswith(lead):
        return abstract
    return flat[len(lead) :].strip()


def linkify(text: str) -> Markup:
    """``text`` escaped, with every http(s) URL in it a link (rel="nofollow noopener")."""
    out: list[str] = []
    last = 0
    for match in URL_RE.finditer(text):
        url = trim_url(match.group())
        if not re.match(r"https?://\w", url, re.IGNORECASE):
            continue
        start, end = match.start(), match.start() + len(url)
        out.append(str(escape(text[last:start])))
        out.append(f'<a href="{escape(url)}" rel="{LINK_REL}">{escape(url)}</a>')
        last = end
    out.append(str(escape(text[last:])))
    return Markup("".join(out))
