"""`digest serve`: the real server (uvicorn) on a free port, spoken to over HTTP."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import feedparser
import pytest

from digest.app import App, make_app, publishing, subscribing
from digest.config import Settings
from digest.web.middleware import CSP
from tests.support.dumps import write_dump
from tests.support.settings import make_settings
from tests.support.web import Served, serve


@pytest.fixture
def site(tmp_path: Path, dumps_dir: Path) -> Iterator[Served]:
    settings: Settings = make_settings(tmp_path, dumps_dir)
    write_dump(
        dumps_dir / "evil.txt",
        [('<script>alert("x")</script> Evil & Co', "Abstract with <b>tags</b> & more. " * 3)],
    )
    app = make_app(settings)
    publishing.send(app)
    yield from serve(app)


def test_feeds_have_content_types_etags_and_304(site: Served) -> None:
    types = {
        "/feed.xml": "application/rss+xml",
        "/atom.xml": "application/atom+xml",
        "/feed.json": "application/feed+json",
    }
    for path, ctype in types.items():
        status, headers, body = site.get(path)
        assert status == 200 and headers["content-type"].startswith(ctype), path
        assert headers["etag"] and headers["last-modified"]
        assert headers["content-security-policy"] == CSP
        again = site.get(path, {"If-None-Match": headers["etag"]})
        assert again[0] == 304 and again[2] == b""
        since = site.get(path, {"If-Modified-Since": headers["last-modified"]})
        assert since[0] == 304
        stale = site.get(path, {"If-None-Match": '"something-else"'})
        assert stale[0] == 200 and stale[2] == body
    parsed = feedparser.parse(site.get("/feed.xml")[2])
    assert parsed.bozo == 0 and len(parsed.entries) == 1


def test_etag_changes_when_a_new_issue_is_published(site: Served) -> None:
    _, first, _ = site.get("/feed.xml")
    write_dump(site.app.settings.dumps_dir / "new.txt", [("Another new paper", "Text. " * 20)])
    publishing.send(site.app)
    status, headers, body = site.get("/feed.xml", {"If-None-Match": first["etag"]})
    assert status == 200 and headers["etag"] != first["etag"]
    assert len(feedparser.parse(body).entries) == 2


def test_index_archive_and_search(site: Served) -> None:
    status, headers, body = site.get("/")
    page = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert 'rel="alternate" type="application/rss+xml"' in page
    assert "177 papers" in page and 'name="q"' in page
    status, _, body = site.get("/archive/1.html")
    assert status == 200 and "Compositional Video Generation as Flow Equalization" in body.decode()
    assert site.get("/archive/1")[0] == 301
    status, _, body = site.get("/?q=mixture+of+experts")
    results = body.decode()
    assert status == 200 and "A Survey on Mixture of Experts" in results
    assert "/archive/1.html#p-" in results
    assert "Online Continual Learning on Hierarchical Label Expansion" not in results


def test_hostile_titles_are_text_everywhere(site: Served) -> None:
    for path in ("/archive/1.html", "/?q=evil", "/?q=%3Cscript%3E"):
        status, headers, body = site.get(path)
        page = body.decode()
        assert status == 200, path
        assert "<script>" not in page and "<b>tags</b>" not in page, path
        assert "script-src" not in headers["content-security-policy"]  # no script may run
    assert "&lt;script&gt;" in site.get("/?q=evil")[2].decode()


@pytest.mark.parametrize(
    "request_line",
    [
        "GET /../digest.db HTTP/1.1",
        "GET /archive/../../digest.db HTTP/1.1",
        "GET /%2e%2e/digest.db HTTP/1.1",
        "GET /archive/%2e%2e%2f%2e%2e%2fdigest.db HTTP/1.1",
        "GET /themes/..%2f..%2fdigest.db HTTP/1.1",
        "GET /..%2fdigest.db HTTP/1.1",
        "GET //etc/passwd HTTP/1.1",
        "GET /etc/passwd HTTP/1.1",
        "GET /digest.lock HTTP/1.1",
    ],
)
def test_no_path_outside_public_is_served(site: Served, request_line: str) -> None:
    response = site.raw(request_line)
    status_line = response.split(b"\r\n", 1)[0]
    assert b" 200 " not in status_line, request_line
    assert b"SQLite format" not in response and b"root:" not in response


def test_symlink_out_of_public_is_refused(site: Served, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    public = site.app.settings.public_dir
    (public / "themes").mkdir(exist_ok=True)
    (public / "themes" / "leak.xml").symlink_to(secret)
    status, _, body = site.get("/themes/leak.xml")
    assert status == 404 and b"top secret" not in body


def test_unknown_paths_get_a_plain_404_page(site: Served) -> None:
    for path in ("/nope", "/themes/NOPE.xml", "/archive/999.html", "/archive/x.html"):
        status, headers, body = site.get(path)
        assert status == 404, path
        assert headers["content-type"].startswith("text/html")
        assert b"Not found" in body and b"Traceback" not in body


def test_run_serve_and_base_url(tmp_path: Path, dumps_dir: Path) -> None:
    settings = make_settings(tmp_path, dumps_dir)
    settings = replace(settings, digest=replace(settings.digest, base_url="http://news.example"))
    app = make_app(settings)
    publishing.send(app)
    for served in serve(app):
        page = served.get("/")[2].decode()
        assert 'href="http://news.example/feed.xml"' in page


def subscriber_token(app: App, address: str) -> str:
    from sqlalchemy import select

    from digest.state.models import Subscriber

    with app.session() as s:
        return s.scalar(select(Subscriber.token).where(Subscriber.key == address.lower()))


def test_one_click_unsubscribe_as_a_mail_provider_sends_it(site: Served) -> None:
    token = subscriber_token(site.app, "ada@example.org")
    assert len(token) >= 40
    # GET only asks: link scanners and previews must not unsubscribe anyone
    status, headers, body = site.get(f"/unsubscribe/{token}")
    assert status == 200 and b"Unsubscribe?" in body and b"ada@example.org" in body
    assert headers["cache-control"] == "no-store"
    assert subscribing.book(site.app).lookup(token).status == "active"
    # RFC 8058: POST with this body, no cookie, no login, from anywhere
    one_click = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, body = site.get(
        f"/unsubscribe/{token}", one_click, method="POST", body="List-Unsubscribe=One-Click"
    )
    assert status == 200 and b"You are unsubscribed" in body
    assert subscribing.book(site.app).lookup(token).status == "unsubscribed"
    again = site.get(f"/unsubscribe/{token}", one_click, "POST", "List-Unsubscribe=One-Click")
    assert again[0] == 200  # idempotent
    assert b"Already unsubscribed" in site.get(f"/unsubscribe/{token}")[2]
    # the next digest does not go to them
    write_dump(site.app.settings.dumps_dir / "n.txt", [("New after unsubscribe", "Text. " * 30)])
    report = publishing.send(site.app)
    assert report.issue == 2 and report.recipients == ("grace@example.org",)


@pytest.mark.parametrize("token", ["nope", "A" * 43, "../../etc/passwd", "%00"])
def test_unknown_token_is_a_plain_404(site: Served, token: str) -> None:
    for method in ("GET", "POST"):
        status, _, body = site.get(f"/unsubscribe/{token}", method=method)
        assert status == 404 and b"Not found" in body and b"Traceback" not in body
    assert site.get(f"/preferences/{token}")[0] == 404


def test_preferences_choose_themes_and_refuse_cross_site_posts(site: Served) -> None:
    import re

    token = subscriber_token(site.app, "grace@example.org")
    status, _, body = site.get(f"/preferences/{token}")
    page = body.decode()
    assert status == 200 and 'value="mixture-of-experts"' in page
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body_ok = f"csrf={csrf}&theme=mixture-of-experts&theme=music-and-audio"
    # a post from another site (the browser says so) is refused, even with the token
    evil = {**form, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert site.get(f"/preferences/{token}", evil, "POST", body_ok)[0] == 403
    # a post without the form's own signature is refused
    assert site.get(f"/preferences/{token}", form, "POST", "theme=music-and-audio")[0] == 403
    assert subscribing.book(site.app).lookup(token).themes == ()
    same = {**form, "Origin": f"http://127.0.0.1:{site.port}", "Sec-Fetch-Site": "same-origin"}
    status, _, body = site.get(f"/preferences/{token}", same, "POST", body_ok)
    assert status == 200 and b"Saved" in body
    assert subscribing.book(site.app).lookup(token).themes == (
        "mixture-of-experts",
        "music-and-audio",
    )
    assert b'value="music-and-audio" checked' in site.get(f"/preferences/{token}")[2]


def test_a_locked_database_stalls_only_the_requests_that_need_it(site: Served) -> None:
    """While another process holds SQLite's lock, a search waits for the database and a
    feed request is still answered meanwhile: the event loop does no database work. No
    clock: the search announces that it reached the database, and it must still be
    waiting when the feed has come back."""
    import sqlite3

    from sqlalchemy import event

    reached = threading.Event()
    engine = site.app.database.engine
    event.listen(engine, "do_connect", lambda *_args: reached.set())
    engine.dispose()  # the search must open a connection, which waits for the lock
    holder = sqlite3.connect(site.app.settings.state_dir / "digest.db", isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")  # readers wait too (as in a checkpoint)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("SELECT count(*) FROM subscribers").fetchall()

    def request(path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=120)
        conn.request("GET", path)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data

    answered: list[int] = []
    search = threading.Thread(target=lambda: answered.append(request("/?q=experts")[0]))
    try:
        search.start()
        assert reached.wait(60), "the search never reached the database"
        status, body = request("/feed.xml")
        assert status == 200 and feedparser.parse(body).bozo == 0
        status, _ = request("/themes/no-such-section.xml")
        assert status == 404  # a page rendered from the templates, also off the loop
        assert search.is_alive() and answered == []  # still waiting for the database
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    search.join(60)
    assert answered == [200]
