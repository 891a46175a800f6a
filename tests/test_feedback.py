""" "More / less like this": the links' pages (GET asks, POST records), their limits and
refusals, and what the marks do to the reader's data (count, forget, export, remove)."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from digest.app import App, make_app, publishing, readers, subscribing
from digest.config import Settings, SubscribeSection
from digest.state.models import Paper, Subscriber
from digest.urls import feedback_path
from tests.support.settings import make_settings
from tests.support.web import Served, serve

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def site(tmp_path: Path, dumps_dir: Path) -> Iterator[Served]:
    settings: Settings = make_settings(tmp_path, dumps_dir)
    settings = replace(settings, subscribe=SubscribeSection(max_feedback_per_hour=3))
    app = make_app(settings)
    publishing.send(app)
    yield from serve(app)


def tokens(app: App) -> dict[str, str]:
    with app.session() as s:
        return dict(s.execute(select(Subscriber.key, Subscriber.token)).all())


def paper_keys(app: App, n: int) -> list[str]:
    with app.session() as s:
        return list(s.scalars(select(Paper.key).order_by(Paper.id).limit(n)))


def same_origin(site: Served) -> dict[str, str]:
    return {**FORM, "Origin": f"http://127.0.0.1:{site.port}", "Sec-Fetch-Site": "same-origin"}


def post(site: Served, path: str) -> tuple[int, bytes]:
    """What the page's button does: post its own form back."""
    status, _, body = site.get(path)
    assert status == 200, path
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', body.decode()).group(1)
    status, _, body = site.get(path, same_origin(site), "POST", f"csrf={csrf}")
    return status, body


def counts(app: App, token: str) -> tuple[int, int]:
    data = readers.desk(app).data(token)
    assert data is not None
    return data.counts.more, data.counts.less


def test_get_asks_post_records_and_twice_is_harmless(site: Served, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    token = tokens(site.app)["ada@example.org"]
    key = paper_keys(site.app, 1)[0]
    path = "/" + feedback_path(token, key, "more")
    status, headers, body = site.get(path)
    page = body.decode()
    assert status == 200 and "More like this?" in page and page.count("<button") == 1
    assert headers["cache-control"] == "no-store"
    assert counts(site.app, token) == (0, 0)  # a scanner opening the link records nothing
    status, body = post(site, path)
    assert status == 200 and b"Noted: more like this" in body and b"/preferences/" in body
    assert counts(site.app, token) == (1, 0)
    assert post(site, path)[0] == 200 and counts(site.app, token) == (1, 0)  # upsert
    # the other link changes the mark, still one row
    assert post(site, "/" + feedback_path(token, key, "less"))[0] == 200
    assert counts(site.app, token) == (0, 1)
    # neither the subscriber's token nor the feed token ever reaches the log
    feed = readers.desk(site.app).data(token).feed_url.rsplit("/", 1)[1].removesuffix(".xml")
    assert token not in caplog.text and feed not in caplog.text
    assert "feedback: subscriber #" in caplog.text  # the log names the row, not the token


def test_forged_or_foreign_token_or_unknown_paper_is_a_plain_404(site: Served) -> None:
    ada, grace = tokens(site.app)["ada@example.org"], tokens(site.app)["grace@example.org"]
    key = paper_keys(site.app, 1)[0]
    good = "/" + feedback_path(ada, key, "more")
    forged = [
        "/" + feedback_path("A" * 43, key, "more"),  # a token no one has
        "/" + feedback_path(ada[:-1] + ("A" if ada[-1] != "A" else "B"), key, "more"),
        "/" + feedback_path(ada, "no such paper at all", "more"),
        good.removesuffix("/more") + "/maybe",
        "/" + feedback_path("short", key, "more"),
    ]
    for path in forged:
        for method in ("GET", "POST"):
            status, _, body = site.get(path, same_origin(site), method, "csrf=x")
            assert status == 404 and b"Not found" in body and b"Traceback" not in body, path
    # grace's token with ada's form key: the form key is bound to the link
    page = site.get(good)[2].decode()
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    foreign = "/" + feedback_path(grace, key, "more")
    assert site.get(foreign, same_origin(site), "POST", f"csrf={csrf}")[0] == 403
    assert counts(site.app, grace) == (0, 0) and counts(site.app, ada) == (0, 0)


def test_cross_site_posts_are_refused(site: Served) -> None:
    token = tokens(site.app)["ada@example.org"]
    path = "/" + feedback_path(token, paper_keys(site.app, 1)[0], "less")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', site.get(path)[2].decode()).group(1)
    evil = {**FORM, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert site.get(path, evil, "POST", f"csrf={csrf}")[0] == 403
    assert site.get(path, same_origin(site), "POST", "csrf=0000")[0] == 403
    assert counts(site.app, token) == (0, 0)


def test_marks_are_limited_per_subscriber(site: Served) -> None:
    ada, grace = tokens(site.app)["ada@example.org"], tokens(site.app)["grace@example.org"]
    keys = paper_keys(site.app, 4)
    for key in keys[:3]:
        assert post(site, "/" + feedback_path(ada, key, "more"))[0] == 200
    status, body = post(site, "/" + feedback_path(ada, keys[3], "more"))
    assert status == 429 and b"Too many marks" in body
    assert counts(site.app, ada) == (3, 0)  # nothing written past the limit
    assert post(site, "/" + feedback_path(grace, keys[3], "more"))[0] == 200  # per subscriber


def test_the_preferences_page_counts_and_forgets_the_marks(site: Served) -> None:
    token = tokens(site.app)["ada@example.org"]
    for key in paper_keys(site.app, 2):
        post(site, "/" + feedback_path(token, key, "more"))
    page = site.get(f"/preferences/{token}")[2].decode()
    assert "You marked 2 papers: 2" in page and "Forget my feedback" in page
    forget = re.search(r'action="([^"]+/forget)"', page).group(1)
    csrf = re.search(r'action="[^"]+/forget">\s*<input type="hidden" name="csrf" '
                     r'value="([0-9a-f]+)"', page).group(1)  # fmt: skip
    path = urlsplit(forget).path
    evil = {**FORM, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert site.get(path, evil, "POST", f"csrf={csrf}")[0] == 403
    assert counts(site.app, token) == (2, 0)
    status, headers, _ = site.get(path, same_origin(site), "POST", f"csrf={csrf}")
    assert status == 303 and headers["location"].endswith(f"/preferences/{token}?done=forget")
    assert counts(site.app, token) == (0, 0)
    done = site.get(f"/preferences/{token}?done=forget")[2].decode()
    assert "Forgotten: you have no marks now." in done and "You have not marked any" in done


def test_marks_are_in_the_export_and_go_with_the_subscriber(settings: Settings) -> None:
    """On SQLite and PostgreSQL: `subscribers remove` removes the marks (ON DELETE
    CASCADE), and export lists them in the `more` and `less` columns."""
    app = make_app(settings)
    publishing.send(app)
    ada, grace = tokens(app)["ada@example.org"], tokens(app)["grace@example.org"]
    keys = paper_keys(app, 3)
    desk = readers.desk(app)
    assert desk.mark(ada, keys[0], 1) == "done" and desk.mark(ada, keys[1], -1) == "done"
    assert desk.mark(grace, keys[2], 1) == "done"
    for hostile in ("\x00", "a\x00b", "x" * 5000, " spaced ", "UPPER"):  # never a key
        assert desk.target(ada, hostile) is None and desk.mark(ada, hostile, 1) == "unknown"
    out = io.StringIO()
    subscribing.book(app).export_csv(out)
    rows = out.getvalue().splitlines()
    assert rows[0] == "email,name,themes,status,watch,mute,more,less"
    assert f"ada@example.org,,,active,,,{keys[0]},{keys[1]}" in rows
    assert f"grace@example.org,,,active,,,{keys[2]}," in rows
    assert subscribing.book(app).remove("ada@example.org")
    with app.session() as s:
        from digest.state import feedback

        assert feedback.all_marks(s) == {
            s.scalar(select(Subscriber.id).where(Subscriber.key == "grace@example.org")): [
                (keys[2], 1)
            ]
        }
