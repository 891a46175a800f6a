"""Feeds any reader renders quickly: each issue's entry is the web copy's papers as plain
semantic HTML, small, with a short summary; the site, the author and the self link are
where RFC 4287 / RSS 2.0 / JSON Feed 1.1 want them; served gzip-compressed with 304s."""

from __future__ import annotations

import gzip
import http.client
import json
from collections.abc import Iterator

import feedparser
import pytest
from lxml import etree
from lxml import html as lxml_html
from sqlalchemy import select, update

from digest.app import App, make_app, publishing
from digest.state.models import Digest
from tests.support.dumps import SAMPLE_FILES
from tests.support.settings import make_settings
from tests.support.waiting import HANG
from tests.support.web import Served, serve

ATOM = "{http://www.w3.org/2005/Atom}"
LIMIT = 60_000  # bytes, for the 176-paper sample
FEEDS = ("feed.xml", "atom.xml", "feed.json")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> App:
    """The three sample dumps published once (one issue of 176 papers), shared."""
    import shutil

    tmp = tmp_path_factory.mktemp("feeds")
    dumps = tmp / "dumps"
    dumps.mkdir()
    for f in SAMPLE_FILES:
        shutil.copy2(f, dumps / f.name)
    app = make_app(make_settings(tmp, dumps))
    assert publishing.send(app).issue == 1
    return app


def feed_bytes(app: App, name: str) -> bytes:
    return (app.settings.public_dir / name).read_bytes()


@pytest.mark.parametrize("name", FEEDS)
def test_each_feed_parses_clean_and_stays_small(published: App, name: str) -> None:
    data = feed_bytes(published, name)
    assert len(data) < LIMIT, f"{name} is {len(data)} bytes"
    if name == "feed.json":  # feedparser 6.0 reads no JSON Feed: check it as JSON
        item = json.loads(data)["items"][0]
        title, content, summary = item["title"], item["content_html"], item["summary"]
    else:
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        assert parsed.version and len(parsed.entries) == 1
        entry = parsed.entries[0]
        title, content, summary = entry.title, entry.content[0].value, entry.summary
    assert "<table" not in content and "style=" not in content
    assert "preheader" not in content and "&#8199;" not in content and "\u2007" not in content
    # every paper is there, linked to its place on the web copy
    assert content.count("/archive/1.html#p-") == 176
    assert "Compositional Video Generation as Flow Equalization" in content
    # the summary is short: the subject and the sections, not the issue again
    assert summary.startswith(title) and "In this issue: " in summary
    assert len(summary) < 600 and "<" not in summary


def test_entry_content_is_semantic_html(published: App) -> None:
    content = feedparser.parse(feed_bytes(published, "feed.xml")).entries[0].content[0].value
    root = lxml_html.fragment_fromstring(content, create_parent="div")
    tags = {el.tag for el in root.iter()} - {"div"}
    assert tags <= {"p", "h2", "ul", "li", "a", "br"}, tags
    assert len(root.findall(".//h2")) == len(root.findall(".//ul")) > 1
    hrefs = [a.get("href") for a in root.iter("a")]
    assert all(h.startswith(("http://localhost:8000/", "https://")) for h in hrefs)
    # each section says where to follow it alone
    assert any(h.startswith("http://localhost:8000/themes/") for h in hrefs)
    # and each paper keeps its one-line summary, shortened to fit
    summaries = [br.tail.strip() for br in root.iter("br")]
    assert len(summaries) >= 170 and all(0 < len(t) <= 200 for t in summaries)


def test_rss_channel_links_the_site_and_itself(published: App) -> None:
    root = etree.fromstring(feed_bytes(published, "feed.xml"))
    channel = root.find("channel")
    assert channel.findtext("link") == "http://localhost:8000/"
    self_links = channel.findall(f"{ATOM}link[@rel='self']")
    assert [a.get("href") for a in self_links] == ["http://localhost:8000/feed.xml"]
    item = channel.find("item")
    encoded = item.find("{http://purl.org/rss/1.0/modules/content/}encoded")
    assert encoded is not None and encoded.text.startswith("<p>")
    assert item.findtext("description").startswith(item.findtext("title"))


def test_atom_has_every_element_rfc_4287_requires(published: App) -> None:
    feed = etree.fromstring(feed_bytes(published, "atom.xml"))
    for name in ("id", "title", "updated"):
        assert (feed.findtext(f"{ATOM}{name}") or "").strip(), name
    # a feed-level author covers every entry (4.1.1: atom:feed MUST contain one or more
    # atom:author elements, unless all of its entries contain one)
    assert feed.findtext(f"{ATOM}author/{ATOM}name") == "Papers digest"
    assert feed.find(f"{ATOM}link[@rel='self']").get("href") == "http://localhost:8000/atom.xml"
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 1
    for entry in entries:
        for name in ("id", "title", "updated"):
            assert (entry.findtext(f"{ATOM}{name}") or "").strip(), name
        assert entry.find(f"{ATOM}link").get("href") == "http://localhost:8000/archive/1.html"
        assert entry.find(f"{ATOM}content").get("type") == "html"
        assert entry.findtext(f"{ATOM}summary")
    assert feedparser.parse(feed_bytes(published, "atom.xml")).feed.author == "Papers digest"


def test_the_sample_subject_fits_a_phone(published: App) -> None:
    entry = feedparser.parse(feed_bytes(published, "feed.xml")).entries[0]
    assert entry.title.startswith("#1 · 176 papers: Mixture of experts, ")
    assert len(entry.title) <= 70


def test_json_feed_has_authors(published: App) -> None:
    doc = json.loads(feed_bytes(published, "feed.json"))
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert doc["authors"] == [{"name": "Papers digest", "url": "http://localhost:8000/"}]
    item = doc["items"][0]
    assert len(item["content_html"].encode()) < LIMIT and item["summary"]


def test_issues_published_before_feed_entries_were_stored_get_a_light_entry(
    published: App,
) -> None:
    with published.session() as s:
        stored = s.scalar(select(Digest.feed_html))
        s.execute(update(Digest).values(feed_html=None))
        s.commit()
    try:
        (published.settings.public_dir / "feed.xml").unlink()
        publishing.publish_files(published)
        data = feed_bytes(published, "feed.xml")
        content = feedparser.parse(data).entries[0].content[0].value
        assert "<table" not in content and 'class="abstract"' not in content
        assert "Compositional Video Generation as Flow Equalization" in content
        assert len(data) < 2 * LIMIT
    finally:  # put it back for the other tests of the module
        with published.session() as s:
            s.execute(update(Digest).values(feed_html=stored))
            s.commit()
        publishing.publish_files(published)


# --------------------------------------------------------------------------- served


@pytest.fixture(scope="module")
def site(published: App) -> Iterator[Served]:
    yield from serve(published)


def raw_get(site: Served, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """A GET whose body is returned as it came over the wire (not decoded)."""
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=HANG)
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


@pytest.mark.parametrize("path", ["/feed.xml", "/atom.xml", "/feed.json", "/", "/archive/1.html"])
def test_served_gzip_when_asked_and_304_still_works(site: Served, path: str) -> None:
    status, plain_headers, plain = raw_get(site, path, {})
    assert status == 200 and "content-encoding" not in plain_headers
    status, headers, body = raw_get(site, path, {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert "accept-encoding" in headers["vary"].lower()
    assert gzip.decompress(body) == plain and len(body) < len(plain) / 2
    assert headers["etag"] != plain_headers["etag"]  # another representation, another tag
    again = raw_get(site, path, {"Accept-Encoding": "gzip", "If-None-Match": headers["etag"]})
    assert again[0] == 304 and again[2] == b""
