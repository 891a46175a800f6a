"""The feed of each topic (themes/<slug>.xml): every area, at every level, has one, holding
its own papers and those of every area below it; old slugs keep their feed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from digest.app import App, make_app, publishing
from digest.config import Settings
from digest.state.models import Digest, DigestItem, Paper
from tests.test_subscriber_chosen_topics import small_vocabulary


@pytest.fixture
def app(tmp_path: Path, settings: Settings) -> App:
    return make_app(small_vocabulary(tmp_path, settings))


def publish(app: App, number: int, items: list[tuple[str, str, str]]) -> None:
    """Store issue ``number`` with papers (title, section slug, area slug) in that order,
    as publishing stores them."""
    with app.session() as s:
        digest = Digest(
            issue=number,
            subject=f"#{number}",
            html="<p>x</p>",
            web_html="<p>x</p>",
            feed_html="<p>x</p>",
            paper_count=len(items),
            themes=[],
            published_at=datetime(2026, 1, number, 8, tzinfo=UTC),
        )
        s.add(digest)
        s.flush()
        for i, (title, section, area) in enumerate(items):
            paper = Paper(key=title.lower(), title=title, abstract=f"About {title}.")
            s.add(paper)
            s.flush()
            s.add(
                DigestItem(
                    digest_id=digest.id,
                    paper_id=paper.id,
                    section=section.title(),
                    section_slug=section,
                    area_slug=area,
                    position=i,
                )
            )
        s.commit()


def titles(app: App, slug: str) -> list[str]:
    path = app.settings.public_dir / "themes" / f"{slug}.xml"
    parsed = feedparser.parse(path.read_bytes())
    assert not parsed.bozo, parsed.bozo_exception
    return [e.title for e in parsed.entries]


def test_a_parents_feed_holds_its_childrens_papers(app: App) -> None:
    publish(
        app,
        1,
        [
            ("Speech one", "sound", "speech"),  # printed under its parent's section
            ("Sound one", "sound", "sound"),
            ("Music one", "music", "music"),
            ("Image one", "vision", "vision"),
        ],
    )
    publish(app, 2, [("Music two", "music", "music"), ("Image two", "vision", "vision")])
    publishing.publish_files(app)
    assert titles(app, "sound") == ["Music two", "Speech one", "Sound one", "Music one"]
    assert titles(app, "speech") == ["Speech one"]
    assert titles(app, "music") == ["Music two", "Music one"]
    assert titles(app, "vision") == ["Image two", "Image one"]
    parsed = feedparser.parse((app.settings.public_dir / "themes" / "sound.xml").read_bytes())
    assert parsed.feed.title == "Papers digest: Sound and music"


def test_an_old_slug_keeps_its_feed(app: App) -> None:
    publish(app, 1, [("Music one", "music", "music")])
    publish(app, 2, [("Old music", "music-generation", "music-generation")])  # stored long ago
    publishing.publish_files(app)
    assert titles(app, "music-generation") == titles(app, "music") == ["Old music", "Music one"]
    assert titles(app, "sound") == ["Old music", "Music one"]


def test_a_childs_new_paper_rewrites_the_feeds_above_it_and_no_other(app: App) -> None:
    publish(app, 1, [("Speech one", "sound", "speech"), ("Image one", "vision", "vision")])
    publishing.publish_files(app)
    publish(app, 2, [("Speech two", "sound", "speech")])
    changed = {p.name for p in publishing.publish_files(app) if p.parent.name == "themes"}
    assert changed == {"speech.xml", "sound.xml"}
    assert titles(app, "sound") == ["Speech two", "Speech one"]
