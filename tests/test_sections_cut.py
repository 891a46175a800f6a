"""How an issue is cut into sections: configured sections (`[[themes]]`) win, research
areas and automatic topics for the rest (deterministic, readable, sized to the digest),
ranking, per-section feeds, and the `digest themes` command. The areas themselves
(vocabulary, fold-up, split, one-line summaries): test_areas.py."""

from __future__ import annotations

import html
import random
import re
import shutil
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from digest.app import inspecting, make_app, publishing
from digest.config import Settings, ThemeConfig, load_settings
from digest.program import main
from digest.sections.assign import REMAINING, Section, assign, fit_key, rank_key
from digest.sections.discover import Limits
from digest.sections.naming import LowercaseIn, display_name, title_phrases
from digest.state.models import Digest
from tests.support.dumps import SAMPLE_FILES, write_dump
from tests.support.papers import Paper, generate, samples

MOE = ThemeConfig("Mixture of experts", ("mixture of experts", "moe", "router"))
MUSIC = ThemeConfig("Music and audio", ("music", "audio"), "Songs and sounds", ("speech",))


def shape(sections: list[Section[Paper]]) -> list[tuple[str, str, list[str], list[str]]]:
    return [(s.name, s.slug, [p.title for p in s.papers], s.reasons) for s in sections]


def squash(text: str) -> str:
    return " ".join(re.sub(r"[-\s]+", " ", text).casefold().split())


@pytest.fixture(scope="module")
def sample_sections() -> list[Section[Paper]]:
    return assign(samples(), ())


# ----------------------------------------------------------------------------- determinism


def test_same_input_gives_the_same_sections(sample_sections: list[Section[Paper]]) -> None:
    assert shape(assign(samples(), ())) == shape(sample_sections)


def test_input_order_does_not_matter(sample_sections: list[Section[Paper]]) -> None:
    papers = list(samples())
    random.Random(7).shuffle(papers)
    assert shape(assign(papers, ())) == shape(sample_sections)
    papers.reverse()
    assert shape(assign(papers, (MOE,))) == shape(assign(samples(), (MOE,)))


# ----------------------------------------------------------------------------- configured


def test_configured_themes_win() -> None:
    sections = assign(samples(), (MOE, MUSIC))
    by_name = {s.name: s for s in sections}
    moe = by_name["Mixture of experts"]
    assert moe.configured and not moe.automatic and moe.slug == "mixture-of-experts"
    titled = [p for p in samples() if re.search(r"mixture[- ]of[- ]experts", p.title, re.I)]
    assert titled and all(p in moe.papers for p in titled)
    # the area of the same slug gives its papers to the configured theme
    assert all(r.startswith(("matched keywords ", "area Mixture of experts")) for r in moe.reasons)
    assert any(r.startswith("matched keywords ") for r in moe.reasons)
    grouped = [s for s in sections if s.automatic or s.area]
    assert grouped, "the rest is still grouped by area and topic"
    assert all(squash(s.name) not in {"mixture of experts", "music and audio"} for s in grouped)
    music = by_name["Music and audio"]
    assert music.description == "Songs and sounds"
    assert not any("speech" in (p.title + p.abstract).lower() for p in music.papers)  # excluded


def test_every_paper_is_in_exactly_one_section() -> None:
    papers = list(samples())
    sections = assign(papers, (MOE,))
    placed = [p for s in sections for p in s.papers]
    assert sorted(placed, key=rank_key) == sorted(papers, key=rank_key)
    assert all(len(s.papers) == len(s.reasons) for s in sections)
    assert len({s.slug for s in sections}) == len(sections)


def test_automatic_off_puts_the_rest_in_one_section() -> None:
    sections = assign(samples(), (MOE,), automatic=False)
    assert [s.name for s in sections] == ["Mixture of experts", REMAINING]


# ----------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(("n", "most"), [(0, 0), (1, 1), (3, 1), (10, 4)])
def test_tiny_digests_get_few_sections(n: int, most: int) -> None:
    sections = assign(list(samples())[:n], ())
    assert len(sections) <= most
    assert sum(len(s.papers) for s in sections) == n


def test_limits_scale_with_the_digest() -> None:
    assert Limits.for_size(3).max_sections == 0
    assert Limits.for_size(10).max_sections <= 3
    assert 10 <= Limits.for_size(176).max_sections <= 25
    assert Limits.for_size(300).max_sections > Limits.for_size(100).max_sections
    assert Limits.for_size(100_000).max_sections == 30


def test_sample_digest_has_a_sensible_number_of_sections(
    sample_sections: list[Section[Paper]],
) -> None:
    grouped = [s for s in sample_sections if s.automatic or s.area]
    assert 12 <= len(grouped) <= 35
    remaining = [s for s in sample_sections if s.name == REMAINING]
    assert len(remaining) <= 1
    if remaining:
        assert sample_sections[-1].name == REMAINING
        assert len(remaining[0].papers) <= 0.10 * len(samples())  # the catch-all stays small
    assert all(len(s.papers) >= 3 for s in grouped if s.automatic)


def test_thousands_of_papers_get_bounded_sections() -> None:
    papers = generate(3000)
    sections = assign(papers, ())
    grouped = [s for s in sections if s.automatic or s.area]
    assert 10 <= len(grouped) <= 60
    assert sum(len(s.papers) for s in sections) == 3000
    assert max(len(s.papers) for s in sections) < 3000 / 3
    assert sum(len(s.papers) for s in sections if s.name == REMAINING) <= 300


# ----------------------------------------------------------------------------- names


def test_names_are_readable_phrases_from_their_titles(
    sample_sections: list[Section[Paper]],
) -> None:
    stems = {"diffus", "generat", "compos", "experi", "learn", "model", "languag"}
    for s in sample_sections:
        if not s.automatic:
            continue
        words = s.name.split()
        assert 2 <= len(words) <= 3, s.name  # a one-word topic is not kept
        assert s.name[0].isupper() and squash(s.name) not in stems, s.name
        assert words[-1].lower() not in {"of", "for", "and", "model", "models", "large"}
        assert any(squash(s.name) in squash(p.title) for p in s.papers), s.name
        assert s.slug == re.sub(r"[^a-z0-9]+", "-", s.name.lower()).strip("-")


def test_the_sample_topics_are_found(sample_sections: list[Section[Paper]]) -> None:
    names = {s.name for s in sample_sections}
    assert {"Mixture of experts", "Text-to-image generation and editing"} <= names
    assert any(n.startswith("Music") for n in names)


def test_display_name_keeps_acronyms_and_proper_names() -> None:
    common = LowercaseIn(["the experts route tokens to an image model with a router"])
    assert display_name("Mixture of Experts", common) == "Mixture of experts"
    assert display_name("Text-to-Image", common) == "Text-to-image"
    assert display_name("MoE Router", common) == "MoE router"
    assert display_name("Bayesian Experts", common) == "Bayesian experts"
    assert display_name("LLMs", common) == "LLMs"


def test_title_phrases_skip_filler() -> None:
    found = {s for _, s in title_phrases("Towards Efficient Mixture-of-Experts for Large Models")}
    assert "Mixture-of-Experts" in found
    assert not {"Towards", "Efficient", "Large Models", "Models", "for Large"} & found
    assert not {s for _, s in title_phrases("Unlocking Compositionality: What's Next?")} & {
        "Unlocking Compositionality",
        "What's",
    }


# ----------------------------------------------------------------------------- ranking


def test_papers_ranked_by_sightings_then_position() -> None:
    papers = [
        Paper("Sparse mixture of experts routing A", "moe", sightings=1, position=0),
        Paper("Sparse mixture of experts routing B", "moe", sightings=3, position=9),
        Paper("Sparse mixture of experts routing C", "moe", sightings=3, position=2),
        Paper("Sparse mixture of experts routing D", "moe", sightings=2, position=1),
    ]
    (section,) = assign(papers, (MOE,))
    assert [p.title[-1] for p in section.papers] == ["C", "B", "D", "A"]
    assert section.weight == 9


def test_sections_ordered_by_weight_remaining_last(
    sample_sections: list[Section[Paper]],
) -> None:
    ranked = [s for s in sample_sections if s.name != REMAINING]
    weights = [s.weight for s in ranked]
    assert weights == sorted(weights, reverse=True)
    for s in sample_sections:
        rows = zip(s.papers, s.fits, s.weak, strict=True)
        keys = [fit_key(p, fit, weak) for p, fit, weak in rows]
        assert keys == sorted(keys)


# ----------------------------------------------------------------------------- feeds


def test_per_theme_feeds(settings: Settings) -> None:
    app = make_app(settings)
    report = publishing.send(app)
    assert report.prepared is not None
    themes_dir = settings.public_dir / "themes"
    sections = report.prepared.view.sections
    vocabulary = app.vocabulary()  # a feed for each section, each paper's own area, and above
    own = {s.slug for s in sections} | {p.area for s in sections for p in s.papers}
    above = {a for slug in own for a in vocabulary.ancestors(slug)}
    wanted_files = {f"{slug}.xml" for slug in above | own}
    assert {p.name for p in themes_dir.glob("*.xml")} == wanted_files
    for section in sections:
        parsed = feedparser.parse((themes_dir / f"{section.slug}.xml").read_bytes())
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        assert parsed.feed.title == f"Papers digest: {section.name}"
        below = vocabulary.descendants(section.slug) | {section.slug}  # its and its children's
        papers = [p for s in sections for p in s.papers if p.area in below or s.slug in below]
        papers = papers[:50]
        assert [e.title for e in parsed.entries] == [p.title for p in papers]
        first = parsed.entries[0]
        assert first.link == first.id == papers[0].web_url
        assert first.published_parsed is not None
        assert html.escape(papers[0].abstract[:40], quote=False) in first.content[0].value


def test_theme_feed_keeps_its_slug_across_digests(settings: Settings) -> None:
    app = make_app(settings)
    publishing.send(app)
    path = settings.public_dir / "themes" / "mixture-of-experts.xml"
    first = feedparser.parse(path.read_bytes()).entries
    write_dump(
        settings.dumps_dir / "010_new.txt",
        [
            (
                "A brand new sparse mixture of experts",
                "We route tokens to experts (MoE), and show that a learned router "
                "beats a fixed one at every scale we tried.",
            )
        ],
    )
    publishing.send(app)
    entries = feedparser.parse(path.read_bytes()).entries
    assert entries[0].title == "A brand new sparse mixture of experts"
    assert entries[0].link.startswith("http://localhost:8000/archive/2.html#p-")
    assert [e.id for e in entries[1:]] == [e.id for e in first]
    before = path.read_bytes()
    publishing.publish_files(app)
    assert path.read_bytes() == before  # rebuilt from the state, byte for byte


# ----------------------------------------------------------------------------- command


def test_themes_command_shows_sections_papers_and_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dumps").mkdir()
    for f in SAMPLE_FILES:
        shutil.copy2(f, tmp_path / "dumps" / f.name)  # keeps the mtime: a settled file
    (tmp_path / "digest.toml").write_text(
        '[[themes]]\nname = "Mixture of experts"\nkeywords = ["mixture of experts", "moe"]\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    result = CliRunner().invoke(main, ["themes"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(r"^\d+ sections, 176 pending papers", out, re.M)
    assert re.search(r"^Mixture of experts  \d+ papers · configured", out, re.M)
    assert "matched keywords mixture of experts" in out
    assert re.search(r"^Text-to-image generation and editing  \d+ papers · area", out, re.M)
    assert "area Text-to-image generation and editing: terms " in out
    assert "We introduce IterComp, a novel framework" in out  # the one-line summary
    short = CliRunner().invoke(main, ["themes", "--no-reasons", "--limit", "2"])
    assert "matched keywords" not in short.output and "… and " in short.output
    app = make_app(load_settings(None))
    with app.session() as s:  # nothing was stored
        assert s.scalar(select(func.count()).select_from(Digest)) == 0
    assert inspecting.status(app).papers_seen == 0


def test_configured_theme_needs_more_than_a_passing_mention() -> None:
    from dataclasses import dataclass as _dc

    from digest.config import ThemeConfig
    from digest.sections.assign import assign

    @_dc(frozen=True)
    class Doc:
        title: str
        abstract: str

    moe = ThemeConfig("Mixture of experts", ("mixture of experts", "mixture-of-experts", "experts"))
    papers = [
        Doc("Scaling laws for pretraining", "We also cover mixture-of-experts models briefly."),
        Doc("Sparse routing", "A mixture of experts layer; each of the experts is small."),
        Doc("Mixture-of-Experts at scale", "No further mention."),
    ]
    sections = assign(papers, [moe], automatic=False)
    by_name = {s.name: s for s in sections}
    assert {p.title for p in by_name["Mixture of experts"].papers} == {
        "Mixture-of-Experts at scale",
        "Sparse routing",
    }
    assert [p.title for p in by_name["More papers"].papers] == ["Scaling laws for pretraining"]
    reason = by_name["Mixture of experts"].reasons[
        [p.title for p in by_name["Mixture of experts"].papers].index("Sparse routing")
    ]
    # "mixture of experts" and "experts" overlap: the passage counts once, plus "experts"
    assert reason == "matched keywords experts, mixture of experts (score 2)"


def test_a_name_that_stops_short_is_extended() -> None:
    from digest.sections.discover import _extend
    from digest.sections.naming import PhraseIndex

    titles = [
        "Efficient Neural Music Generation",
        "Multi-Track Music Generation with Latent Diffusion",
        "Music Transformer",
        "A Survey of Image Generation",
        "Controllable Image Generation",
    ]
    index = PhraseIndex.build(titles, 2)
    music = next(k for k in index.docs if k[-1] == "music")
    # 2 of the 3 music titles say "music generation": the longer name wins
    assert " ".join(_extend(music, {0, 1, 2}, index, set())) == "music generation"
    # taken already by another section: keep the short one
    longer = next(k for k in index.docs if " ".join(k) == "music generation")
    assert _extend(music, {0, 1, 2}, index, {longer}) == music
