"""What a reader's chosen topic delivers: the papers of that area and of every area below
it, in every issue, whatever section or layout group the issue printed them under."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.app import App, make_app, publishing, subscribing
from digest.config import Settings
from digest.mail import outbox
from digest.render.viewmodel import DigestView, PaperView, SectionView
from digest.state import digests
from digest.state.models import Delivery, DigestVariant, Subscriber

# A parent with two children: "speech" prints under its parent's section, "music" is a
# section of its own (and was once called "music-generation").
AREAS = """
replace = true

[[area]]
slug = "sound"
name = "Sound and music"
description = "Audio of every kind."
terms = ["sound"]

[[area]]
slug = "speech"
name = "Speech"
description = "Speech recognition and synthesis."
terms = ["speech"]
parent = "sound"
section = "sound"

[[area]]
slug = "music"
name = "Music"
description = "Music generation and understanding."
terms = ["music"]
parent = "sound"
aliases = ["music-generation"]

[[area]]
slug = "vision"
name = "Vision"
description = "Images."
terms = ["image"]
"""


def small_vocabulary(tmp_path: Path, settings: Settings) -> Settings:
    path = tmp_path / "areas.toml"
    path.write_text(AREAS)
    return replace(settings, digest=replace(settings.digest, areas_file=str(path)), themes=())


@pytest.fixture
def app(tmp_path: Path, settings: Settings) -> App:
    return make_app(small_vocabulary(tmp_path, settings))


def paper(n: int, title: str, area: str) -> PaperView:
    return PaperView(
        key=title.lower(),
        anchor=f"p-{n}",
        title=title,
        abstract=f"{title}: the abstract.",
        short_abstract=f"{title}: the abstract.",
        truncated=False,
        links=(),
        web_url=f"http://localhost:8000/archive/1.html#p-{n}",
        area=area,
    )


def issue(number: int, *sections: tuple[str, str, list[tuple[str, str]]]) -> DigestView:
    """A view of sections (name, slug, [(title, area)]), papers numbered in order."""
    views, n = [], 0
    for name, slug, papers in sections:
        made = []
        for title, area in papers:
            n += 1
            made.append(paper(n, title, area))
        views.append(SectionView(name, slug, f"s-{slug}", tuple(made)))
    return DigestView(
        site_title="Papers digest",
        issue=number,
        subject=f"#{number}",
        published_at=datetime(2026, 1, number, 8, tzinfo=UTC),
        sections=tuple(views),
        paper_count=n,
        base_url="http://localhost:8000",
        web_url=f"http://localhost:8000/archive/{number}.html",
        feed_url="http://localhost:8000/feed.xml",
        archive_url="http://localhost:8000/",
    )


def deliver(app: App, view: DigestView) -> dict[str, str]:
    """Create the issue's deliveries as publishing does; each subscriber's e-mail text,
    or "" when they were skipped."""
    personaliser = publishing.personaliser(app)
    record = digests.DigestRecord(
        issue=view.issue,
        subject=view.subject,
        html="",
        web_html="",
        published_at=view.published_at,
        items=[],
        themes=[s.name for s in view.sections],
    )
    with app.session() as session:
        chosen = outbox.selections(
            session, view, with_all=False, take=subscribing.topic_covers(app)
        )
        letters = personaliser.letters(view, chosen)  # before the write, as publishing does
        digest = digests.create_digest(session, record)
        outbox.create_deliveries(
            session,
            digest.id,
            view,
            personaliser,
            letters,
            lambda: "<x@localhost>",
            subscribing.topic_covers(app),
        )
        session.commit()
        rows = session.execute(
            select(Subscriber.address, DigestVariant.text)
            .join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .outerjoin(DigestVariant, DigestVariant.id == Delivery.variant_id)
            .where(Delivery.digest_id == digest.id)
        ).all()
    return {address: text or "" for address, text in rows}


def test_a_childs_reader_gets_its_papers_under_the_parents_section_and_in_a_layout_group(
    app: App,
) -> None:
    book = subscribing.book(app)
    book.add("speech@example.org", themes="Speech")  # by name
    book.add("music@example.org", themes="music")  # by slug
    book.add("parent@example.org", themes="sound")  # the parent: its children too
    book.add("vision@example.org", themes="vision")
    # Issue 1: speech prints under its parent's section; music has its own section.
    first = deliver(
        app,
        issue(
            1,
            ("Sound and music", "sound", [("A speech paper", "speech"), ("A sound one", "sound")]),
            ("Music", "music", [("A music paper", "music")]),
            ("Vision", "vision", [("An image paper", "vision")]),
        ),
    )
    assert "A speech paper" in first["speech@example.org"]
    assert "A sound one" not in first["speech@example.org"]  # the parent's own paper
    assert "A music paper" not in first["speech@example.org"]
    assert "A music paper" in first["music@example.org"]
    assert "A speech paper" not in first["music@example.org"]
    for title in ("A speech paper", "A sound one", "A music paper"):
        assert title in first["parent@example.org"]
    assert "An image paper" not in first["parent@example.org"]
    # Issue 2: the small sections are gathered at the end in one layout group.
    second = deliver(
        app,
        issue(
            2,
            ("Vision", "vision", [("Another image paper", "vision")]),
            ("Briefly", "briefly", [("A second music paper", "music"), ("Image two", "vision")]),
        ),
    )
    assert "A second music paper" in second["music@example.org"]
    assert "Image two" not in second["music@example.org"]
    assert "A second music paper" in second["parent@example.org"]
    assert second["speech@example.org"] == ""  # none of theirs: skipped
    assert "Image two" in second["vision@example.org"]
    assert "A second music paper" not in second["vision@example.org"]


def test_an_old_slug_still_delivers_the_area_that_now_covers_it(app: App) -> None:
    """A choice stored under an old slug (an alias), or as a name: resolved when sent."""
    with app.session() as session:
        session.add(Subscriber(key="old@example.org", address="old@example.org", name="",
                               status="active", themes=["music-generation"], token="t" * 43,
                               bounce_count=0))  # fmt: skip
        session.commit()
    got = deliver(
        app,
        issue(
            1,
            ("Music", "music", [("A music paper", "music")]),
            ("Vision", "vision", [("An image paper", "vision")]),
        ),
    )
    assert "A music paper" in got["old@example.org"]
    assert "An image paper" not in got["old@example.org"]


def test_a_choice_made_after_the_letters_were_rendered_is_rendered_outside_the_write(
    app: App,
) -> None:
    """Publishing renders every letter before its write transaction; a reader whose
    choice appeared meanwhile makes the write stop, untouched, naming the letter to
    render, instead of rendering it while holding the write lock."""
    subscribing.book(app).add("vision@example.org", themes="vision")
    view = issue(
        1,
        ("Sound and music", "sound", [("A sound paper", "sound")]),
        ("Vision", "vision", [("An image", "vision")]),
    )
    personaliser = publishing.personaliser(app)
    take = subscribing.topic_covers(app)
    with app.session() as session:
        letters = personaliser.letters(
            view, outbox.selections(session, view, with_all=False, take=take)
        )
    subscribing.book(app).add("sound@example.org", themes="sound")  # chosen meanwhile
    with app.session() as session:
        digest = digests.create_digest(session, replace_record(view))
        with pytest.raises(outbox.LettersMissing) as missing:
            outbox.create_deliveries(
                session, digest.id, view, personaliser, letters, lambda: "<x@localhost>", take
            )
        assert len(missing.value.selections) == 1
        assert session.scalars(select(DigestVariant.id)).all() == []  # nothing written
        session.rollback()
    assert "A sound paper" in deliver(app, view)["sound@example.org"]


def replace_record(view: DigestView) -> digests.DigestRecord:
    return digests.DigestRecord(
        issue=view.issue,
        subject=view.subject,
        html="",
        web_html="",
        published_at=view.published_at,
        items=[],
        themes=[s.name for s in view.sections],
    )
