"""The public files that publishing keeps up to date without reading the history: the
index and the pages of older issues (read back with lxml: every issue is reachable from
the index through the "Older issues" links, each page lists exactly its fixed span, a
full page is never rewritten, a missing page is made again), and the per-section feeds
(parsed back with feedparser: only the sections of new issues are rewritten, and what is
on disk is always what a rebuild from the whole state would write). The history is
seeded as the rows publishing stores, after one real send."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from lxml import html as lxml_html

from digest.app import App, make_app, publishing
from digest.publish.feeds import FeedSite, theme_rss
from digest.publish.sectionfeeds import section_feeds
from digest.state.models import Digest, DigestItem, Paper
from digest.urls import ISSUES_PER_PAGE, archive_page_path
from tests.support.dumps import SAMPLE_FILES
from tests.support.settings import make_settings
from tests.support.web import serve

BASE = "http://localhost:8000"


@pytest.fixture
def app(tmp_path: Path) -> App:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    shutil.copy2(SAMPLE_FILES[0], dumps / SAMPLE_FILES[0].name)
    app = make_app(make_settings(tmp_path, dumps))
    assert publishing.publish(app).issue == 1
    return app


def add_issues(app: App, up_to: int) -> None:
    """Published digests numbered after the last one, up to ``up_to``."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with app.session() as session:
        last = max(session.scalars(Digest.__table__.select().with_only_columns(Digest.issue)))
        session.add_all(
            Digest(
                issue=n,
                subject=f"Issue {n} <b>&</b> more",
                html="<p>mail</p>",
                web_html=f"<p>web copy {n}</p>",
                feed_html=f"<p>feed {n}</p>",
                paper_count=n % 7 + 1,
                themes=[f"Area {n % 3}"],
                published_at=start + timedelta(days=n),
            )
            for n in range(last + 1, up_to + 1)
        )
        session.commit()


def read(app: App, relative: str) -> lxml_html.HtmlElement:
    return lxml_html.fromstring((app.settings.public_dir / relative).read_bytes())


def local(app: App, url: str) -> str:
    assert url.startswith(BASE + "/"), url
    return url.removeprefix(BASE + "/") or "index.html"


def listed(root: lxml_html.HtmlElement) -> list[int]:
    """The issue numbers a page lists, in its order (from each entry's web-copy link)."""
    hrefs = root.xpath("//li[@class='issue-item']/h2/a/@href")
    return [int(h.rsplit("/", 1)[1].removesuffix(".html")) for h in hrefs]


def pager(root: lxml_html.HtmlElement, rel: str) -> str | None:
    found = root.xpath(f"//nav[@class='pager']/a[@rel='{rel}']/@href")
    return found[0] if found else None


def test_a_short_archive_is_one_index_with_no_pages(app: App) -> None:
    add_issues(app, ISSUES_PER_PAGE)
    publishing.publish_files(app)
    root = read(app, "index.html")
    assert listed(root) == list(range(ISSUES_PER_PAGE, 0, -1))
    assert root.xpath("string(//h1)") == "All issues"
    assert pager(root, "next") is None
    assert not list((app.settings.public_dir / "archive").glob("page-*.html"))


def test_every_issue_is_reachable_and_each_page_lists_its_span(app: App) -> None:
    newest = 3 * ISSUES_PER_PAGE + 31  # the index lists 132-181; pages 1-3 hold 1-150
    add_issues(app, newest)
    publishing.publish_files(app)
    index = read(app, "index.html")
    assert listed(index) == list(range(newest, newest - ISSUES_PER_PAGE, -1))
    assert index.xpath("string(//h1)") == "Latest issues"
    assert f"{ISSUES_PER_PAGE} of {newest} issues" in index.xpath("string(//p[@class='meta'])")
    seen = set(listed(index))
    url, pages = pager(index, "next"), []
    while url:
        name = local(app, url)
        root = read(app, name)
        k = int(name.removeprefix("archive/page-").removesuffix(".html"))
        span = range(k * ISSUES_PER_PAGE, (k - 1) * ISSUES_PER_PAGE, -1)
        assert listed(root) == list(span), name
        newer = pager(root, "prev")
        assert newer is not None
        assert (app.settings.public_dir / local(app, newer)).is_file()
        seen |= set(span)
        pages.append(k)
        url = pager(root, "next")
    assert pages == [3, 2, 1]
    assert seen == set(range(1, newest + 1))
    assert pager(read(app, archive_page_path(3)), "prev") == BASE + "/"
    assert pager(read(app, archive_page_path(2)), "prev") == BASE + "/" + archive_page_path(3)
    for number in seen:  # and each listed issue's web copy was written
        assert (app.settings.public_dir / "archive" / f"{number}.html").is_file()


def test_full_pages_are_not_rewritten_and_a_missing_page_is_made_again(app: App) -> None:
    add_issues(app, 2 * ISSUES_PER_PAGE + 40)  # pages 1 and 2
    publishing.publish_files(app)
    public = app.settings.public_dir
    first = (public / archive_page_path(1)).read_bytes()
    add_issues(app, 3 * ISSUES_PER_PAGE + 1)  # page 3 is made; page 2 now links to it
    changed = {p.relative_to(public).as_posix() for p in publishing.publish_files(app)}
    assert archive_page_path(3) in changed
    assert archive_page_path(2) in changed
    assert archive_page_path(1) not in changed
    assert (public / archive_page_path(1)).read_bytes() == first
    assert pager(read(app, archive_page_path(2)), "prev") == BASE + "/" + archive_page_path(3)

    (public / archive_page_path(1)).unlink()
    changed = {p.relative_to(public).as_posix() for p in publishing.publish_files(app)}
    assert changed == {archive_page_path(1)}
    assert (public / archive_page_path(1)).read_bytes() == first


def test_subjects_on_the_pages_are_text(app: App) -> None:
    add_issues(app, ISSUES_PER_PAGE + 2)
    publishing.publish_files(app)
    root = read(app, archive_page_path(1))
    titles = root.xpath("//li[@class='issue-item']/h2/a")
    assert titles[0].text_content() == f"Issue {ISSUES_PER_PAGE} <b>&</b> more"
    assert not root.xpath("//li[@class='issue-item']//b")


def test_the_web_server_serves_the_pages(app: App) -> None:
    add_issues(app, ISSUES_PER_PAGE + 2)
    publishing.publish_files(app)
    for site in serve(app):
        status, headers, body = site.get("/" + archive_page_path(1))
        assert status == 200
        assert headers["content-type"].startswith("text/html")
        assert listed(lxml_html.fromstring(body)) == list(range(ISSUES_PER_PAGE, 0, -1))
        for missing in ("/archive/page-2.html", "/archive/page-x.html", "/archive/page-.html"):
            assert site.get(missing)[0] == 404, missing


def add_issue_in(app: App, sections: dict[str, int]) -> int:
    """One more published issue with ``sections``: slug -> how many new papers."""
    with app.session() as session:
        issue = max(session.scalars(Digest.__table__.select().with_only_columns(Digest.issue))) + 1
        digest = Digest(
            issue=issue,
            subject=f"Issue {issue}",
            html="<p>mail</p>",
            web_html=f"<p>web copy {issue}</p>",
            paper_count=sum(sections.values()),
            themes=[f"Section {slug}" for slug in sections],
        )
        session.add(digest)
        session.flush()
        position = 0
        for slug, count in sections.items():
            for i in range(count):
                title = f"Paper {issue}.{position} on {slug}"
                paper = Paper(key=title.lower(), title=title, abstract=f"About {slug}, {i}.")
                paper.published_in = digest.id
                session.add(paper)
                session.flush()
                session.add(
                    DigestItem(
                        digest_id=digest.id,
                        paper_id=paper.id,
                        section=f"Section {slug}",
                        section_slug=slug,
                        position=position,
                    )
                )
                position += 1
        session.commit()
    return issue


def feed_files(app: App) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (app.settings.public_dir / "themes").glob("*.xml")}


def rebuilt(app: App) -> dict[str, bytes]:
    """What every section feed would be, rebuilt from the whole state."""
    site = FeedSite(app.settings.digest.title, app.settings.base_url)
    with app.session() as session:
        feeds = section_feeds(session, app.settings.base_url, app.vocabulary())
    return {f"{feed.slug}.xml": theme_rss(site, feed) for feed in feeds}


def test_only_the_sections_of_a_new_issue_are_rewritten(app: App) -> None:
    add_issue_in(app, {"alpha": 3, "beta": 2})
    publishing.publish_files(app)
    before = feed_files(app)
    assert {"alpha.xml", "beta.xml"} <= set(before)
    issue = add_issue_in(app, {"alpha": 2, "gamma": 1})
    changed = {p.name for p in publishing.publish_files(app) if p.parent.name == "themes"}
    assert changed == {"alpha.xml", "gamma.xml"}
    after = feed_files(app)
    assert after["beta.xml"] == before["beta.xml"]
    assert after == rebuilt(app)
    alpha = feedparser.parse(after["alpha.xml"])
    assert not alpha.bozo
    assert [e.title for e in alpha.entries[:2]] == [
        f"Paper {issue}.0 on alpha",
        f"Paper {issue}.1 on alpha",
    ]
    areas = read(app, "index.html").xpath("//section[@id='areas']//a/text()")
    assert {"Section alpha", "Section beta", "Section gamma"} <= set(areas)


def test_a_missing_feed_is_made_again_and_a_missed_issue_caught_up(app: App) -> None:
    add_issue_in(app, {"alpha": 2, "beta": 2})
    publishing.publish_files(app)
    (app.settings.public_dir / "themes" / "beta.xml").unlink()
    add_issue_in(app, {"alpha": 1})
    add_issue_in(app, {"gamma": 1})  # two issues since the files were last written
    changed = {p.name for p in publishing.publish_files(app) if p.parent.name == "themes"}
    assert changed == {"alpha.xml", "beta.xml", "gamma.xml"}
    assert feed_files(app) == rebuilt(app)


def test_a_new_base_url_rewrites_every_page_and_feed(app: App, tmp_path: Path) -> None:
    add_issues(app, ISSUES_PER_PAGE + 5)
    add_issue_in(app, {"alpha": 2})
    publishing.publish_files(app)
    moved = make_app(
        make_settings(tmp_path, tmp_path / "dumps", base_url="https://papers.example.net")
    )
    changed = {
        p.relative_to(moved.settings.public_dir).as_posix() for p in publishing.publish_files(moved)
    }
    assert {archive_page_path(1), "index.html", "feed.xml"} <= changed
    assert {f"themes/{name}" for name in feed_files(moved)} <= changed
    assert feed_files(moved) == rebuilt(moved)
    page = read(moved, archive_page_path(1))
    assert page.xpath("//nav[@class='pager']/a[@rel='prev']/@href") == [
        "https://papers.example.net/"
    ]


def test_files_are_published_while_other_processes_write(app: App) -> None:
    """Delivery workers commit all the time (heartbeats, claims, sent rows): publishing
    must still record which files it wrote. On SQLite a read-then-write transaction
    cannot take the write lock once another connection has committed since its read;
    with that bug this test fails in most runs (3 of 4 here), not all: the window
    between the read and the write is short. It never fails without the bug."""
    import sqlite3
    import threading

    add_issues(app, 3)
    path = app.settings.state_dir / "digest.db"
    stop, commits = threading.Event(), [0]

    def writer() -> None:
        conn = sqlite3.connect(path, timeout=60)
        while not stop.is_set():
            conn.execute("UPDATE meta SET value = value WHERE key = 'public_files'")
            conn.commit()
            commits[0] += 1
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(20):
            publishing.publish_files(app)
    finally:
        stop.set()
        thread.join()
    assert commits[0] > 20
