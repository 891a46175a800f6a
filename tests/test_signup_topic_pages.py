"""The subscribe and preferences pages show the topics as a table of contents: the broad
areas, each ticked as a whole or opened to pick some of its topics; every name once.
Clicked through in headless Chromium; screenshots at 375 and 1280 px in test-artifacts/."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from digest.app import subscribing
from digest.state.models import Subscriber
from tests.support.web import Served
from tests.test_web_in_browser import (  # noqa: F401  (the browser and site fixtures)
    browser,
    confirm_link_in,
    layout_problems,
    open_page,
    shot,
    site,
)

WIDTHS = (375, 1280)


def labels(page: object, selector: str) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[attr-defined,no-any-return]
        selector, "els => els.map(e => e.textContent.replace(/\\s+/g, ' ').trim())"
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_subscribing_to_a_whole_broad_area(browser, site: Served, width: int) -> None:  # noqa: F811
    app = site.app
    vocabulary = app.vocabulary()
    tops = [a for a in vocabulary if not a.parent]
    page = open_page(browser, viewport={"width": width, "height": 900})
    page.goto(f"{app.settings.base_url}/subscribe")
    page.click("details.areas-choice summary")
    groups = page.locator(".topic-group")
    own = [t.name for t in app.settings.themes if vocabulary.resolve(t.name) is None]
    assert groups.count() == len(tops) + len(own)  # a group per broad area, and themes
    names = labels(page, ".topic-group label.choice")
    assert len(names) == len({" ".join(n.split(" (all")[0].split()).casefold() for n in names})
    assert page.locator(".topic-children[open]").count() == 0  # children folded away
    assert page.locator(".topic-children input").first.is_visible() is False
    assert layout_problems(page, width) == []
    shot(page, f"subscribe-topics-{width}.png", 3000)
    # tick a whole broad area with children, subscribe, confirm: its slug is stored
    parent = next(a for a in tops if vocabulary.children(a.slug))
    address = f"group-{width}@example.org"
    page.fill("#email", address)
    page.check(f".choice-group input[value='{parent.slug}']")
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert "Check your inbox" in page.content()
    page.goto(confirm_link_in(app.settings.outbox_dir, address))
    with page.expect_navigation():
        page.click("button[type=submit]")
    [me] = [s for s in subscribing.book(app).list() if s.address == address]
    assert me.themes == (parent.slug,)
    page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_preferences_open_the_group_of_a_chosen_topic(browser, site: Served, width: int) -> None:  # noqa: F811
    app = site.app
    vocabulary = app.vocabulary()
    child = next(a for a in vocabulary if a.parent and vocabulary.section_of(a.slug) == a.slug)
    book = subscribing.book(app)
    book.add(f"prefs-{width}@example.org", themes=child.slug)
    with app.session() as s:
        token = s.scalar(
            select(Subscriber.token).where(Subscriber.key == f"prefs-{width}@example.org")
        )
    page = open_page(browser, viewport={"width": width, "height": 900})
    page.goto(f"{app.settings.base_url}/preferences/{token}")
    box = page.locator(f".topic-children input[value='{child.slug}']")
    assert box.is_visible() and box.is_checked()  # its group is open
    assert page.locator(".topic-children[open]").count() == 1
    assert layout_problems(page, width) == []
    shot(page, f"preferences-topics-{width}.png", 3000)
    top = vocabulary.top(child.slug)
    page.uncheck(f"input[value='{child.slug}']")
    page.check(f".choice-group input[value='{top}']")
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert "Saved" in page.content()
    assert book.lookup(token).themes == (top,)  # type: ignore[union-attr]
    page.close()


def test_a_group_with_one_topic_inside_offers_no_choice_within_it() -> None:
    from digest.render.topics import topic_groups
    from digest.sections.areas import Area, Vocabulary

    def area(slug: str, parent: str = "") -> Area:
        return Area(slug, slug.title(), "d", (slug,), parent)

    vision = (area("vision"), area("detection", "vision"))
    audio = (area("audio"), area("speech", "audio"), area("music", "audio"))
    vocabulary = Vocabulary((*vision, *audio))
    groups = {g.slug: g for g in topic_groups(vocabulary, [])}
    assert groups["vision"].topics == ()  # "all 1 topics" and a disclosure of one were shown
    assert [t.slug for t in groups["audio"].topics] == ["speech", "music"]
