"""RSS 2.0, Atom and JSON Feed 1.1 of the recent issues, written atomically."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from feedgen.feed import FeedGenerator

from digest.publish.public import write_public
from digest.urls import issue_url, section_page_url


@dataclass(frozen=True)
class FeedSite:
    title: str
    base_url: str  # no trailing slash
    description: str = "A themed digest of new research papers."


@dataclass(frozen=True)
class FeedIssue:
    issue: int
    subject: str
    published_at: datetime  # timezone-aware
    html: str  # the issue as semantic HTML (a fragment: no tables, no inline styles)
    summary: str  # one short paragraph of plain text: the subject and the sections
    url: str  # the web copy
    themes: tuple[str, ...] = ()


def feed_summary(subject: str, sections: Sequence[str], limit: int = 320) -> str:
    """The entry's short summary: the subject, then the sections as many as fit in
    about ``limit`` characters ("… and 9 more")."""
    shown: list[str] = []
    for i, name in enumerate(sections):
        rest = len(sections) - i - 1
        tail = f" and {rest} more" if rest else ""
        if shown and len(subject) + len(", ".join([*shown, name])) + len(tail) + 20 > limit:
            return f"{subject}. In this issue: {', '.join(shown)} and {len(sections) - i} more."
        shown.append(name)
    return f"{subject}. In this issue: {', '.join(shown)}." if shown else subject


def issue_guid(base_url: str, issue: int) -> str:
    """Stable across rebuilds and hosts moving paths: derived from base_url and issue."""
    return issue_url(base_url, issue)


def build_generator(site: FeedSite, issues: Sequence[FeedIssue], self_path: str) -> FeedGenerator:
    """A feedgen generator with `issues` (newest first) as entries, dates from the data."""
    fg = FeedGenerator()
    fg.id(site.base_url + "/")
    fg.title(site.title)
    fg.description(site.description)
    fg.subtitle(site.description)
    fg.language("en")
    fg.author(name=site.title, uri=site.base_url + "/")
    fg.link(href=f"{site.base_url}/{self_path}", rel="self")
    fg.link(href=site.base_url + "/", rel="alternate")  # RSS <link>: the site itself
    fg.generator("digest")
    if issues:
        newest = max(i.published_at for i in issues)
        fg.updated(newest)
        fg.lastBuildDate(newest)
        fg.pubDate(newest)
    for item in issues:
        fe = fg.add_entry(order="append")
        guid = issue_guid(site.base_url, item.issue)
        fe.id(guid)
        fe.guid(guid, permalink=True)
        fe.title(item.subject)
        fe.link(href=item.url, rel="alternate")
        fe.published(item.published_at)
        fe.updated(item.published_at)
        fe.description(html.escape(item.summary, quote=False))  # RSS: read as HTML
        fe.content(item.html, type="html")
        fe.summary(item.summary)
        for theme in item.themes:
            fe.category(term=theme)
    return fg


def json_feed(site: FeedSite, issues: Sequence[FeedIssue]) -> str:
    """JSON Feed 1.1 from the same data."""
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": site.title,
        "home_page_url": site.base_url + "/",
        "feed_url": site.base_url + "/feed.json",
        "description": site.description,
        "language": "en",
        "authors": [{"name": site.title, "url": site.base_url + "/"}],
        "items": [
            {
                "id": issue_guid(site.base_url, i.issue),
                "url": i.url,
                "title": i.subject,
                "content_html": i.html,
                "summary": i.summary,
                "date_published": i.published_at.isoformat(),
                "date_modified": i.published_at.isoformat(),
                "tags": list(i.themes),
            }
            for i in issues
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def rss_cdata(fg: FeedGenerator) -> bytes:
    """RSS 2.0 with each entry's HTML in a CDATA section rather than escaped."""
    for entry in fg.entry():
        content = entry.content()
        if content and content.get("content"):
            entry.content(content["content"], type="CDATA")
    return bytes(fg.rss_str(pretty=True))


def write_feeds(public_dir: Path, site: FeedSite, issues: Sequence[FeedIssue]) -> list[Path]:
    """Write feed.xml (RSS), atom.xml and feed.json; returns the files that changed."""
    files = {
        public_dir / "feed.xml": rss_cdata(build_generator(site, issues, "feed.xml")),
        public_dir / "atom.xml": build_generator(site, issues, "atom.xml").atom_str(pretty=True),
        public_dir / "feed.json": json_feed(site, issues).encode("utf-8"),
    }
    return [path for path, data in files.items() if write_public(path, data)]


# --------------------------------------------------------------------------- per theme


@dataclass(frozen=True)
class ThemeEntry:
    """One paper in a theme's feed."""

    title: str
    abstract: str  # plain text
    url: str  # the paper on its issue's web copy (archive page + #anchor): also the guid
    published_at: datetime  # the issue's, timezone-aware
    issue: int


@dataclass(frozen=True)
class ThemeFeed:
    slug: str  # the file is themes/<slug>.xml
    name: str  # the section's most recent name
    entries: tuple[ThemeEntry, ...]  # newest first


def _abstract_html(text: str) -> str:
    """Plain text as HTML paragraphs: every character of it shows as text."""
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)


def theme_rss(site: FeedSite, theme: ThemeFeed) -> bytes:
    """RSS 2.0 for one theme: one entry per paper, newest issue first, dates from the data."""
    fg = FeedGenerator()
    path = f"themes/{theme.slug}.xml"
    fg.id(f"{site.base_url}/{path}")
    fg.title(f"{site.title}: {theme.name}")
    # RSS <description> is read as HTML: dump text (a title, an abstract, a section's name)
    # goes in escaped as text, never as markup; <title> and <category> are plain text.
    fg.description(html.escape(f"New papers on {theme.name}, from {site.title}.", quote=False))
    fg.language("en")
    fg.link(href=f"{site.base_url}/{path}", rel="self")
    # RSS <link> (feedgen takes the last link): the section's page, not the feed itself
    fg.link(href=section_page_url(site.base_url, theme.slug), rel="alternate")
    fg.generator("digest")
    if theme.entries:
        newest = max(e.published_at for e in theme.entries)
        fg.lastBuildDate(newest)
        fg.pubDate(newest)
    for entry in theme.entries:
        fe = fg.add_entry(order="append")
        fe.id(entry.url)
        fe.guid(entry.url, permalink=True)
        fe.title(entry.title)
        fe.link(href=entry.url)
        fe.published(entry.published_at)
        as_html = _abstract_html(entry.abstract) or html.escape(entry.title, quote=False)
        fe.description(as_html)
        fe.content(as_html, type="html")
        fe.category(term=theme.name)
    return bytes(fg.rss_str(pretty=True))


def write_theme_feeds(public_dir: Path, site: FeedSite, themes: Sequence[ThemeFeed]) -> list[Path]:
    """Write themes/<slug>.xml for each theme, atomically; returns the files that changed."""
    changed = []
    for theme in themes:
        path = public_dir / "themes" / f"{theme.slug}.xml"
        if write_public(path, theme_rss(site, theme)):
            changed.append(path)
    return changed


def feed_fragment(web_html: str) -> str:
    """An issue published before feed entries were stored: its web copy's papers without
    abstracts, classes or the page around them."""
    from lxml import html as lxml_html

    root = lxml_html.fromstring(web_html)
    main = root.find(".//main")
    if main is None:
        return html_body(web_html)
    for element in main.xpath(".//p[@class='abstract'] | .//details | .//nav | .//form"):
        element.drop_tree()
    for element in main.iter():
        for name in ("class", "id", "style", "aria-labelledby"):
            element.attrib.pop(name, None)
    inner = "".join(lxml_html.tostring(child, encoding="unicode") for child in main)
    return inner.strip()


def html_body(document: str) -> str:
    """The inside of <body>, for feeds (which want a fragment, not a document)."""
    match = re.search(r"<body[^>]*>(.*)</body>", document, re.S | re.I)
    return match.group(1).strip() if match else document
