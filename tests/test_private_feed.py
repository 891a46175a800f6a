"""Each reader's private feed, /feeds/<feed-token>.xml: their view of each issue (For you
from their marks, then their topics), read by feedparser and by newsboat, cached like
the public feeds, and dead once they make a new link."""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from sqlalchemy import select

from digest.app import App, make_app, publishing, readers, subscribing
from digest.state.models import Subscriber
from tests.support.dumps import write_dump
from tests.support.net import free_port
from tests.support.settings import make_settings
from tests.support.waiting import HANG
from tests.support.web import Served, serve

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def site(tmp_path: Path, dumps_dir: Path) -> Iterator[Served]:
    port = free_port()
    settings = make_settings(tmp_path, dumps_dir)
    origin = f"http://127.0.0.1:{port}"
    app = make_app(replace(settings, digest=replace(settings.digest, base_url=origin)))
    publishing.send(app)
    yield from serve(app, port)


def token_of(app: App, address: str) -> str:
    with app.session() as s:
        return str(s.scalar(select(Subscriber.token).where(Subscriber.key == address)))


def feed_path(app: App, address: str) -> str:
    data = readers.desk(app).data(token_of(app, address))
    assert data is not None
    return urlsplit(data.feed_url).path


def test_the_feed_parses_and_differs_between_readers(site: Served) -> None:
    grace = token_of(site.app, "grace@example.org")
    subscribing.book(site.app).choose_themes(grace, ["music-and-audio"])
    ada_path, grace_path = (
        feed_path(site.app, "ada@example.org"),
        feed_path(site.app, "grace@example.org"),
    )
    assert ada_path != grace_path and grace not in grace_path  # not the unsubscribe token
    status, headers, body = site.get(ada_path)
    assert status == 200 and headers["content-type"].startswith("application/rss+xml")
    assert headers["cache-control"].startswith("private")
    ada = feedparser.parse(body)
    assert ada.bozo == 0 and ada.feed.title == "Papers digest: your feed"
    assert len(ada.entries) == 1 and ada.entries[0].title.startswith("#1 · 176 papers")
    theirs = feedparser.parse(site.get(grace_path)[2])
    assert theirs.bozo == 0 and len(theirs.entries) == 1
    music = theirs.entries[0].content[0].value
    assert "Efficient Neural Music Generation" in music
    assert "Mixture of experts" not in music and "papers:" in theirs.entries[0].title
    assert theirs.entries[0].title != ada.entries[0].title  # fewer papers: their count
    assert music != ada.entries[0].content[0].value


def test_caching_like_the_public_feeds_and_gzip(site: Served) -> None:
    path = feed_path(site.app, "ada@example.org")
    status, headers, body = site.get(path)
    assert status == 200 and headers["etag"] and headers["last-modified"]
    assert site.get(path, {"If-None-Match": headers["etag"]})[0] == 304
    assert site.get(path, {"If-Modified-Since": headers["last-modified"]})[0] == 304
    zipped = site.get(path, {"Accept-Encoding": "gzip"})
    assert zipped[0] == 200 and zipped[1]["content-encoding"] == "gzip"
    assert gzip.decompress(zipped[2]) == body and zipped[1]["etag"] != headers["etag"]
    assert site.get(path, {"Accept-Encoding": "gzip", "If-None-Match": zipped[1]["etag"]})[0] == 304
    # a new issue changes the feed
    write_dump(site.app.settings.dumps_dir / "n.txt", [("A later paper", "Text. " * 30)])
    publishing.send(site.app)
    again = site.get(path, {"If-None-Match": headers["etag"]})
    assert again[0] == 200 and len(feedparser.parse(again[2]).entries) == 2


def test_a_foreign_or_old_token_is_a_plain_404(site: Served, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    ada = token_of(site.app, "ada@example.org")
    path = feed_path(site.app, "ada@example.org")
    for bad in (f"/feeds/{ada}.xml", "/feeds/" + "A" * 43 + ".xml", "/feeds/x.xml",
                path[:-5] + ("A" if path[-5] != "A" else "B") + ".xml"):  # fmt: skip
        status, _, body = site.get(bad)
        assert status == 404 and b"Not found" in body, bad
    # "Make a new link" on the preferences page: the old link dies, the new one works
    page = site.get(f"/preferences/{ada}")[2].decode()
    assert path in page and "Make a new link" in page
    action = re.search(r'action="([^"]+/feed)"', page).group(1)
    csrf = re.search(r'/feed">\s*<input type="hidden" name="csrf" value="([0-9a-f]+)"', page)
    evil = {**FORM, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert site.get(urlsplit(action).path, evil, "POST", f"csrf={csrf.group(1)}")[0] == 403
    assert site.get(path)[0] == 200
    same = {**FORM, "Sec-Fetch-Site": "same-origin"}
    status, headers, _ = site.get(urlsplit(action).path, same, "POST", f"csrf={csrf.group(1)}")
    assert status == 303
    new = feed_path(site.app, "ada@example.org")
    assert new != path and site.get(path)[0] == 404 and site.get(new)[0] == 200
    # neither feed token nor the subscriber's token ever reaches the log
    for secret in (ada, path.rsplit("/", 1)[1][:-4], new.rsplit("/", 1)[1][:-4]):
        assert secret not in caplog.text
    assert "private feed: subscriber #" in caplog.text
    assert (
        "this is your new link"
        in site.get(urlsplit(headers["location"]).path + "?done=feed")[2].decode()
    )


def test_for_you_follows_a_more_and_never_shows_a_less(site: Served) -> None:
    from digest.ingest.keys import paper_key

    app = site.app
    ada = token_of(app, "ada@example.org")
    desk = readers.desk(app)
    liked = "Efficient Neural Music Generation"  # a paper of issue 1
    assert desk.mark(ada, paper_key(liked), 1) == "done"
    write_dump(app.settings.dumps_dir / "next.txt", [
        ("Neural Music Generation with Diffusion", "We generate music and audio with a "
         "neural model. Efficient music generation from text. " * 3),
        ("Music Generation at Scale", "Neural music generation of songs and audio. " * 4),
        ("A Router for Experts", "We route tokens to a mixture of experts. " * 5),
    ])  # fmt: skip

    def for_you_and_rest() -> tuple[str, str]:
        entries = feedparser.parse(site.get(feed_path(app, "ada@example.org"))[2]).entries
        newest = entries[0].content[0].value
        if "For you" not in newest:
            return "", newest
        head, _, rest = newest.partition("</ul>")
        return head, rest

    publishing.send(app)
    for_you, rest = for_you_and_rest()
    assert "Neural Music Generation with Diffusion" in for_you
    assert "Music Generation at Scale" in for_you and f"like: {liked}" in for_you
    assert "A Router for Experts" not in for_you and "A Router for Experts" in rest
    assert "Neural Music Generation with Diffusion" not in rest  # not repeated below
    # "less" on one of them: it leaves For you (and stays in its section)
    assert desk.mark(ada, paper_key("Music Generation at Scale"), -1) == "done"
    for_you, rest = for_you_and_rest()
    assert "Music Generation at Scale" not in for_you and "Music Generation at Scale" in rest
    # grace marked nothing: her feed has no For you
    grace = site.get(feed_path(app, "grace@example.org"))[2].decode()
    assert "For you" not in grace


def test_newsboat_reads_the_private_feed(site: Served, tmp_path: Path) -> None:
    newsboat = shutil.which("newsboat")
    if newsboat is None:
        pytest.fail("newsboat is not installed: run the tests through .ci/run")
    url = f"http://127.0.0.1:{site.port}{feed_path(site.app, 'ada@example.org')}"
    (tmp_path / "urls").write_text(url + "\n")
    (tmp_path / "config").write_text("")
    cache = tmp_path / "cache.db"
    result = subprocess.run(
        [newsboat, "-u", str(tmp_path / "urls"), "-c", str(cache),
         "-C", str(tmp_path / "config"), "-x", "reload"],
        capture_output=True, text=True, timeout=HANG, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(cache) as db:
        assert db.execute("SELECT title FROM rss_feed").fetchone()[0] == "Papers digest: your feed"
        titles = [t for (t,) in db.execute("SELECT title FROM rss_item")]
    assert len(titles) == 1 and titles[0].startswith("#1 · 176 papers")


def test_every_e_mail_leads_to_the_readers_feed(site: Served) -> None:
    import mailbox
    from email import message_from_bytes, policy

    box = mailbox.Maildir(site.app.settings.outbox_dir, create=False)
    for raw in box:
        msg = message_from_bytes(raw.as_bytes(), policy=policy.default)
        to = str(msg["To"])
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        link = re.search(r"Your feed: (\S+)", text).group(1)
        assert (
            link == f"{site.app.settings.base_url}/preferences/{token_of(site.app, to)}#your-feed"
        )
        assert f'href="{link}"' in html and ">Your feed</a>" in html
        page = site.get(urlsplit(link).path)[2].decode()
        assert 'id="your-feed"' in page and feed_path(site.app, to) in page


def test_the_feed_is_the_readers_whole_view_watches_in_mutes_out(site: Served) -> None:
    app = site.app
    grace = token_of(app, "grace@example.org")
    subscribing.book(app).choose_themes(grace, ["music-and-audio"])
    before = feedparser.parse(site.get(feed_path(app, "grace@example.org"))[2])
    assert "Efficient Neural Music Generation" in before.entries[0].content[0].value
    subscribing.book(app).choose_phrases(
        grace, "Mixture of Monosemantic Experts", "efficient neural music generation"
    )
    feed = feedparser.parse(site.get(feed_path(app, "grace@example.org"))[2])
    assert feed.bozo == 0
    entry = feed.entries[0].content[0].value
    assert "Efficient Neural Music Generation" not in entry  # muted
    head, _, rest = entry.partition("</ul>")
    assert "For you" in head and "Monet: Mixture of Monosemantic Experts" in head
    assert "matched: Mixture of Monosemantic Experts" in head
    assert "Mixture of experts" not in rest  # not her topic: only the watched paper came
