"""The pages and the e-mail in headless Chromium (Debian's, driven by Playwright), and a
real feed reader (newsboat) subscribed to the served feed.

Screenshots are saved under test-artifacts/ (the folder is printed) for a person to
look at; the assertions check what a reader would notice: nothing wider than the
screen, text large enough, links that go where they say.
"""

from __future__ import annotations

import mailbox
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from digest.app import make_app, publishing, subscribing
from digest.render.renderer import Renderer
from tests.support.dumps import ROOT, write_dump
from tests.support.net import free_port
from tests.support.settings import make_settings
from tests.support.waiting import HANG
from tests.support.web import Served, serve

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("DIGEST_TEST_ARTIFACTS", ROOT / "test-artifacts"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = (375, 1024)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run the tests through .ci/run")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def site(tmp_path: Path, dumps_dir: Path) -> Iterator[Served]:
    port = free_port()
    settings = make_settings(tmp_path, dumps_dir)
    origin = f"http://127.0.0.1:{port}"  # links in the pages point at base_url
    settings = replace(settings, digest=replace(settings.digest, base_url=origin))
    app = make_app(settings)
    publishing.send(app)
    yield from serve(app, port)


def open_page(browser: object, **options: object) -> object:
    """A new page whose every wait (navigation, click, selector) only a hang exceeds."""
    page = browser.new_page(**options)  # type: ignore[attr-defined]
    page.set_default_timeout(HANG * 1000)
    page.set_default_navigation_timeout(HANG * 1000)
    return page


def shot(page: object, name: str, height: int = 6000) -> Path:
    """A screenshot of the top of the page (at most `height` px, to keep it quick)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    full = page.evaluate("document.documentElement.scrollHeight")  # type: ignore[attr-defined]
    width = page.viewport_size["width"]  # type: ignore[attr-defined]
    clip = {"x": 0, "y": 0, "width": width, "height": min(full, height)}
    page.screenshot(path=str(path), full_page=True, clip=clip)  # type: ignore[attr-defined]
    return path


def layout_problems(page: object, width: int) -> list[str]:
    """Elements wider than the viewport, and body text smaller than 12 px."""
    return page.evaluate(  # type: ignore[attr-defined,no-any-return]
        """(width) => {
            const out = [];
            if (document.documentElement.scrollWidth > width + 1)
                out.push('page scrolls sideways: ' + document.documentElement.scrollWidth);
            for (const el of document.querySelectorAll('p, li, a, h1, h2, h3, td')) {
                const size = parseFloat(getComputedStyle(el).fontSize);
                if (el.offsetParent !== null && el.textContent.trim() && size < 12)
                    out.push('tiny text ' + size + 'px: ' + el.textContent.trim().slice(0, 40));
            }
            return out.slice(0, 5);
        }""",
        width,
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_email_html_renders_well(browser, site: Served, width: int, tmp_path: Path) -> None:
    box = mailbox.Maildir(site.app.settings.outbox_dir, create=False)
    msg = message_from_bytes(next(iter(box)).as_bytes(), policy=policy.default)
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    path = tmp_path / "email.html"
    path.write_text(html, encoding="utf-8")
    page = open_page(browser, viewport={"width": width, "height": 900})
    page.goto(path.as_uri())
    assert layout_problems(page, width) == [], f"e-mail at {width}px"
    shot(page, f"email-{width}.png")
    # without <style> (clients that drop it) the layout still holds: the CSS is inline
    page.evaluate("document.querySelectorAll('style').forEach(s => s.remove())")
    assert layout_problems(page, width) == [], f"e-mail without <style> at {width}px"
    shot(page, f"email-nostyle-{width}.png")
    page.close()


def test_search_box_finds_papers(browser, site: Served) -> None:
    page = open_page(browser, viewport={"width": 1024, "height": 900})
    page.goto(f"http://127.0.0.1:{site.port}/")
    page.fill("input[name=q]", "music generation")
    with page.expect_navigation():
        page.click("form.search button")
    assert "Efficient Neural Music Generation" in page.content()
    shot(page, "search-1024.png")
    page.close()


def test_newsboat_lists_the_issues(site: Served, tmp_path: Path) -> None:
    newsboat = shutil.which("newsboat")
    if newsboat is None:
        pytest.fail("newsboat is not installed: run the tests through .ci/run")
    (tmp_path / "urls").write_text(f"http://127.0.0.1:{site.port}/feed.xml\n")
    (tmp_path / "config").write_text("")
    cache = tmp_path / "cache.db"

    def reload() -> list[str]:
        result = subprocess.run(
            [newsboat, "-u", str(tmp_path / "urls"), "-c", str(cache),
             "-C", str(tmp_path / "config"), "-x", "reload"],
            capture_output=True, text=True, timeout=HANG, env={**os.environ, "HOME": str(tmp_path)},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        with sqlite3.connect(cache) as db:
            assert db.execute("SELECT title FROM rss_feed").fetchone()[0] == "Papers digest"
            return [t for (t,) in db.execute("SELECT title FROM rss_item ORDER BY pubDate")]

    first = reload()
    assert len(first) == 1 and first[0].startswith("#1 · 176 papers: ")
    write_dump(site.app.settings.dumps_dir / "more.txt", [("A later paper", "Text. " * 30)])
    publishing.send(site.app)
    titles = reload()  # the reader sees the new issue next to the old one
    assert len(titles) == 2 and titles[1].startswith("#2 · 1 paper")


def test_unsubscribe_flow_clicked_through(browser, site: Served) -> None:
    """From the e-mail's unsubscribe link to the confirmation, in a real browser."""
    box = mailbox.Maildir(site.app.settings.outbox_dir, create=False)
    msgs = [message_from_bytes(m.as_bytes(), policy=policy.default) for m in box]
    msg = next(m for m in msgs if m["To"] == "ada@example.org")
    header = str(msg["List-Unsubscribe"])
    url = next(part.strip("<> ") for part in header.split(",") if "http" in part)
    page = open_page(browser, viewport={"width": 375, "height": 800})
    page.goto(url)
    assert "Unsubscribe?" in page.content()
    shot(page, "unsubscribe-confirm-375.png")
    with page.expect_navigation():  # the form posts, the answer is a new page
        page.click("button[type=submit]")
    assert "You are unsubscribed" in page.content()
    shot(page, "unsubscribe-done-375.png")
    token = url.rsplit("/", 1)[1]
    assert subscribing.book(site.app).lookup(token).status == "unsubscribed"
    # preferences: tick a topic and save, all by clicking
    grace = next(m for m in msgs if m["To"] == "grace@example.org")
    link = next(p.strip("<> ") for p in str(grace["List-Unsubscribe"]).split(",") if "http" in p)
    page.goto(link.replace("/unsubscribe/", "/preferences/"))
    topic = page.locator("input[value='mixture-of-experts']")
    page.locator(".topic-children", has=topic).locator("summary").click()  # in its group
    topic.check()
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "Saved" in page.content()
    shot(page, "preferences-375.png")
    assert subscribing.book(site.app).lookup(link.rsplit("/", 1)[1]).themes == (
        "mixture-of-experts",
    )
    page.close()


SCHEMES = ("light", "dark")


def confirm_link_in(outbox: Path, address: str) -> str:
    import re

    box = mailbox.Maildir(outbox, create=False)
    msgs = [message_from_bytes(m.as_bytes(), policy=policy.default) for m in box]
    mine = [m for m in msgs if m["To"] == address and "Confirm" in str(m["Subject"])]
    assert mine, f"no confirmation for {address}"
    text = mine[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return re.search(r"http://\S+/subscribe/confirm/\S+", text).group()  # type: ignore[union-attr]


@pytest.mark.parametrize("width", WIDTHS)
def test_pages_and_subscribing_in_light_and_dark(
    browser, site: Served, width: int, tmp_path: Path
) -> None:
    """Index, issue, subscribe, confirm and the e-mails, as a reader sees them in light
    and dark mode: subscribing is done by clicking, from the form to the confirmation."""
    for scheme in SCHEMES:
        look_at_everything(browser, site, width, scheme, tmp_path)


def look_at_everything(browser, site: Served, width: int, scheme: str, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{site.port}"
    page = open_page(browser, viewport={"width": width, "height": 900}, color_scheme=scheme)
    tag = f"{width}-{scheme}"

    def look(name: str, height: int = 2400) -> None:
        assert layout_problems(page, width) == [], f"{name} at {tag}"
        shot(page, f"{name}-{tag}.png", height)

    page.goto(f"{base}/")
    look("index")
    page.goto(f"{base}/archive/1.html")
    look("issue")
    assert page.locator("article[id^=p-]").count() == 176
    first = page.locator("nav a[href^='#s-']").first  # the contents jump to their section
    target = first.get_attribute("href")
    first.click()
    assert page.evaluate("location.hash") == target
    back = page.locator(f"{target} p.back a")  # and the section leads back to them
    back.click()
    assert page.evaluate("location.hash") == "#contents"
    page.goto(f"{base}/subscribe")
    look("subscribe")
    page.click("details.areas-choice summary")  # the areas are folded away until asked for
    look("subscribe-areas")
    address = f"reader-{width}-{scheme}@example.org"
    page.fill("#email", address)
    page.check("input[value='music-and-audio']")
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert "Check your inbox" in page.content()
    look("subscribe-sent")
    page.goto(confirm_link_in(site.app.settings.outbox_dir, address))
    assert "Confirm your subscription" in page.content()
    look("confirm")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "You are subscribed" in page.content()
    look("confirmed")
    assert subscribing.book(site.app).list("active")[-1].address == address
    # the digest e-mail and the confirmation e-mail, as a mail app would show them
    box = mailbox.Maildir(site.app.settings.outbox_dir, create=False)
    msgs = [message_from_bytes(m.as_bytes(), policy=policy.default) for m in box]
    digest = next(m for m in msgs if m["To"] == "ada@example.org")
    confirm = next(m for m in msgs if m["To"] == address and "Confirm" in str(m["Subject"]))
    for name, msg in (("email", digest), ("confirm-email", confirm)):
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        path = tmp_path / f"{name}.html"
        path.write_text(html, encoding="utf-8")
        page.goto(path.as_uri())
        look(name)
    page.close()


# At 1,280 px a paper took about 750 px with every abstract open (176 papers: 132,000 px);
# folded under <details>, a paper is its title, its one-liner and a row of links.
HEIGHT_PER_PAPER = 250


def titles_on_first_screen(page: object) -> list[str]:
    """The paper titles (h3) wholly inside the viewport as the page opens."""
    return page.evaluate(  # type: ignore[attr-defined,no-any-return]
        """() => [...document.querySelectorAll('h3')]
            .filter(h => { const r = h.getBoundingClientRect();
                           return r.height > 0 && r.top >= 0 && r.bottom <= innerHeight; })
            .map(h => h.textContent.trim())"""
    )


def test_issue_page_and_email_open_with_papers(browser, site: Served, tmp_path: Path) -> None:
    """The web copy and the e-mail show a paper on a phone's first screen, in light and
    dark; the web copy folds every abstract, so its height follows the paper count."""
    box = mailbox.Maildir(site.app.settings.outbox_dir, create=False)
    msg = message_from_bytes(next(iter(box)).as_bytes(), policy=policy.default)
    email = tmp_path / "email.html"
    email.write_text(msg.get_body(("html",)).get_content(), encoding="utf-8")  # type: ignore[union-attr]
    for scheme in SCHEMES:
        for width, height in ((375, 812), (1280, 900)):
            page = open_page(
                browser, viewport={"width": width, "height": height}, color_scheme=scheme
            )
            tag = f"{width}-{scheme}"
            page.goto(f"http://127.0.0.1:{site.port}/archive/1.html")
            assert layout_problems(page, width) == [], f"issue at {tag}"
            assert titles_on_first_screen(page), f"issue at {tag}: only the contents show first"
            if width == 1280:
                papers = page.locator("article.paper").count()
                full = page.evaluate("document.documentElement.scrollHeight")
                assert papers == 176 and full <= HEIGHT_PER_PAPER * papers, full
                assert page.locator("details.abstract-more[open]").count() == 0
                abstract = page.locator("details.abstract-more p.abstract").first
                assert not abstract.is_visible()
                page.locator("details.abstract-more summary").first.click()  # one click away
                assert abstract.is_visible()
                # the e-mail's "Read the full abstract" opens it (Chromium opens <details>)
                page.goto(f"http://127.0.0.1:{site.port}/archive/1.html#p-2-abstract")
                assert page.locator("#p-2-abstract").is_visible()
            shot(page, f"issue-top-{tag}.png", 1800)
            page.goto(email.as_uri())
            assert titles_on_first_screen(page), f"e-mail at {tag}: only the contents show first"
            shot(page, f"email-top-{tag}.png", 1800)
            page.close()


def _luminance(rgb: str) -> float:
    r, g, b = (int(float(v)) / 255 for v in rgb[rgb.index("(") + 1 : -1].split(",")[:3])
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(fg: str, bg: str) -> float:
    """The WCAG 2 contrast ratio of two CSS colours as Chromium computes them ("rgb(…)")."""
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_welcome_email_links_are_legible_in_light_and_dark(browser) -> None:
    assert round(contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)"), 1) == 21.0
    assert round(contrast("rgb(67, 83, 198)", "rgb(31, 35, 41)"), 1) == 2.5  # the old dark link
    html, _ = Renderer().notice(
        "welcome_email",
        address="ada@example.org",
        themes=("Music and audio",),
        preferences_url="http://x.test/preferences/t",
        unsubscribe_url="http://x.test/unsubscribe/t",
        feed_url="http://x.test/feed.xml",
        site_title="Papers digest",
        archive_url="http://x.test/",
    )
    for scheme in SCHEMES:
        page = open_page(browser, viewport={"width": 375, "height": 800}, color_scheme=scheme)
        page.set_content(html)
        links = page.evaluate(
            """() => [...document.querySelectorAll('a')].map(a => {
                let e = a, bg = 'rgba(0, 0, 0, 0)';
                while (e && (bg = getComputedStyle(e).backgroundColor) === 'rgba(0, 0, 0, 0)')
                    e = e.parentElement;
                return [a.textContent.trim(), getComputedStyle(a).color, bg];
            })"""
        )
        assert len(links) >= 5
        for text, fg, bg in links:  # WCAG AA asks 4.5:1 for text
            assert contrast(fg, bg) >= 4.5, f"{scheme}: {text!r} {fg} on {bg}"
        shot(page, f"welcome-email-375-{scheme}.png", 1200)
        page.close()


@pytest.mark.parametrize("width", (375, 1280))
def test_feedback_page_clicked_through_in_light_and_dark(browser, site: Served, width: int) -> None:
    """ "More like this" from its link to the confirmation, by clicking, then the reader's
    marks and feed on the preferences page: in light and dark, nothing wider than the
    screen, no tiny text."""
    from sqlalchemy import select

    from digest.ingest.keys import paper_key
    from digest.state.models import Subscriber
    from digest.urls import feedback_path

    with site.app.session() as s:
        token = s.scalar(select(Subscriber.token).where(Subscriber.key == "ada@example.org"))
    key = paper_key("Efficient Neural Music Generation")
    base = f"http://127.0.0.1:{site.port}"
    for scheme in SCHEMES:
        page = open_page(browser, viewport={"width": width, "height": 800}, color_scheme=scheme)
        tag = f"{width}-{scheme}"
        page.goto(f"{base}/{feedback_path(token, key, 'more')}")
        assert "More like this?" in page.content()
        assert layout_problems(page, width) == [], f"feedback at {tag}"
        shot(page, f"feedback-confirm-{tag}.png")
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert "Noted: more like this" in page.content()
        assert layout_problems(page, width) == [], f"feedback done at {tag}"
        shot(page, f"feedback-done-{tag}.png")
        with page.expect_navigation():
            page.click("text=Your preferences")
        assert "You marked 1 paper" in page.content() and "Make a new link" in page.content()
        page.locator("#your-feed").scroll_into_view_if_needed()
        assert layout_problems(page, width) == [], f"preferences at {tag}"
        shot(page, f"preferences-feed-and-marks-{tag}.png")
        page.close()
