"""Dump text in every feed is text: a title or an abstract holding markup (a script, an
image with onerror, an svg with onload) reaches a feed reader as the characters it is,
in the issue feeds and in each section's feed, never as elements it would run."""

from __future__ import annotations

from pathlib import Path

import feedparser
import pytest
from lxml import html as lxml_html

from digest.app import App, make_app, publishing
from tests.support.dumps import write_dump
from tests.support.settings import make_settings

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
SVG = "<svg onload=alert(3)>"
TITLE = f"Sparse Mixture of Experts {SCRIPT} {IMG}"
ABSTRACT = (
    f"We route tokens to experts {SVG} and {IMG} with a learned router {SCRIPT}, "
    "and study load balancing across many settings, model sizes and data sets; the "
    "router keeps every expert busy, the model trains faster than a dense one of the "
    "same quality, and the results hold for every size we tried & more."
)
OTHER = (
    "We study one thing in depth, across many settings and data sets, and find that it "
    "works well in each of them, which we explain with a small model of the training "
    "dynamics and a set of careful ablations on three benchmarks of different sizes."
)
RUNNABLE = {"script", "img", "svg", "iframe", "object", "embed", "style", "link"}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> App:
    tmp = tmp_path_factory.mktemp("feedtext")
    dumps = tmp / "dumps"
    dumps.mkdir()
    write_dump(dumps / "d.txt", [(TITLE, ABSTRACT), ("Dense Baselines Revisited", OTHER)])
    app = make_app(make_settings(tmp, dumps))
    assert publishing.send(app).issue == 1
    return app


def feeds(app: App) -> list[Path]:
    public = app.settings.public_dir
    themes = sorted((public / "themes").glob("*.xml"))
    assert themes, "no section feed was written"
    return [public / "feed.xml", public / "atom.xml", *themes]


def html_fields(parsed: feedparser.FeedParserDict) -> list[str]:
    """Every value of the feed that a reader renders as HTML."""
    found = []
    for part in [parsed.feed, *parsed.entries]:
        for key in ("title", "subtitle", "summary", "rights"):
            detail = part.get(f"{key}_detail")
            if detail and detail.type in ("text/html", "application/xhtml+xml"):
                found.append(detail.value)
        found += [c.value for c in part.get("content", []) if c.type != "text/plain"]
    return found


def elements(fragment: str) -> list[tuple[str, list[str]]]:
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    return [(str(e.tag), list(e.attrib)) for e in root.iter() if e is not root]


def test_no_feed_field_carries_dump_markup_as_elements(published: App) -> None:
    for path in feeds(published):
        parsed = feedparser.parse(path.read_bytes(), sanitize_html=False)
        assert parsed.bozo == 0, (path.name, parsed.get("bozo_exception"))
        fields = html_fields(parsed)
        assert fields, path.name
        for value in fields:
            for tag, attributes in elements(value):
                assert tag not in RUNNABLE, (path.name, tag, value[:300])
                assert not [a for a in attributes if a.lower().startswith("on")], (path.name, value)


def test_a_section_feed_shows_the_abstract_and_title_as_text(published: App) -> None:
    public = published.settings.public_dir
    texts = []
    for path in sorted((public / "themes").glob("*.xml")):
        for entry in feedparser.parse(path.read_bytes(), sanitize_html=False).entries:
            shown = lxml_html.fragment_fromstring(entry.summary, create_parent="div")
            texts.append((entry.title, " ".join(shown.text_content().split())))
    assert (TITLE, ABSTRACT) in texts, texts
