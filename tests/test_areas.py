"""Research areas: the shipped vocabulary, a user's areas file, each paper's own area and the
section the vocabulary prints it under (whatever the issue's size), the best paper first, the
remaining share, `digest themes --format tsv|json`, and the one-line summary."""

from __future__ import annotations

import csv
import html
import io
import json
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from digest.app import make_app, publishing, subscribing
from digest.config import Settings, ThemeConfig, load_settings
from digest.errors import ConfigError
from digest.program import main
from digest.sections.areas import BUNDLED, bundled, load_vocabulary
from digest.sections.assign import REMAINING, Section, assign
from digest.sections.match import assignable
from digest.sections.summary import sentences, summarise
from digest.state.models import DigestItem
from tests.support.dumps import SAMPLE_FILES
from tests.support.papers import Paper, generate, samples

# ----------------------------------------------------------------------------- vocabulary


def test_the_bundled_vocabulary_is_a_tree_of_described_areas() -> None:
    vocabulary = bundled()
    assert 40 <= len(vocabulary) <= 80
    slugs = [a.slug for a in vocabulary]
    assert len(set(slugs)) == len(slugs)
    assert len({a.name.casefold() for a in vocabulary}) == len(slugs)
    for area in vocabulary:
        assert area.name.strip() and area.description.strip() and area.terms, area.slug
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", area.slug)
        assert not area.parent or area.parent in vocabulary.by_slug
    parents = [a for a in vocabulary if not a.parent]
    assert 8 <= len(parents) <= 20
    assert vocabulary.by_slug["mixture-of-experts"].parent == "efficient-architectures"
    assert REMAINING.casefold() not in {a.name.casefold() for a in vocabulary}


def test_an_areas_file_extends_or_replaces_the_bundled_one(tmp_path: Path) -> None:
    extra = tmp_path / "areas.toml"
    extra.write_text(
        '[[area]]\nslug = "quantum-ml"\nname = "Quantum machine learning"\n'
        'parent = "learning-foundations"\ndescription = "Learning with quantum computers."\n'
        'terms = ["quantum", "qubit"]\n\n'
        '[[area]]\nslug = "music"\nname = "Music"\ndescription = "Songs."\nterms = ["song"]\n'
    )
    extended = load_vocabulary(str(extra))
    assert len(extended) == len(bundled()) + 1
    assert extended.by_slug["quantum-ml"].parent == "learning-foundations"
    assert extended.by_slug["music"].name == "Music"  # same slug: replaced in place
    extra.write_text(
        "replace = true\n" + extra.read_text().replace('parent = "learning-foundations"\n', "")
    )
    assert [a.slug for a in load_vocabulary(str(extra))] == ["quantum-ml", "music"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[area]]\nslug = "x"\nname = "X"\ndescription = "d"\nterms = []\n', "at least one term"),
        ('[[area]]\nslug = "x"\nname = "X"\nterms = ["x"]\n', "'description'"),
        ('[[area]]\nslug = "Bad Slug"\nname = "X"\ndescription = "d"\nterms = ["x"]\n', "slug"),
        ('[[area]]\nslug = "x"\nname = "X"\ndescription = "d"\nterms = ["x"]\nparent = "nope"\n',
         "unknown parent"),
        ("replace = true\n" + '[[area]]\nslug = "a"\nname = "A"\ndescription = "d"\nterms = ["a"]\n'
         '[[area]]\nslug = "a"\nname = "B"\ndescription = "d"\nterms = ["b"]\n', "used twice"),
    ],
)  # fmt: skip
def test_a_bad_areas_file_is_refused_with_the_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "areas.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_vocabulary(str(path))


def test_the_areas_file_setting_is_used_by_the_app(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        'replace = true\n[[area]]\nslug = "songs"\nname = "Songs and music"\n'
        'description = "Music."\nterms = ["music", "song", "melody"]\n'
    )
    (tmp_path / "digest.toml").write_text('[digest]\nareas_file = "mine.toml"\n')
    settings = load_settings(tmp_path / "digest.toml")
    assert settings.areas_file == tmp_path / "mine.toml"
    from digest.app import make_app

    app = make_app(settings)
    assert [a.slug for a in app.vocabulary()] == ["songs"]
    assert ("songs", "Songs and music") in subscribing.theme_choices(app)


# ----------------------------------------------------------------------------- matching


def shape(sections: list[Section[Paper]]) -> list[tuple[str, str, list[str], list[str]]]:
    return [(s.name, s.slug, [p.title for p in s.papers], s.reasons) for s in sections]


def test_areas_are_deterministic_and_independent_of_order() -> None:
    papers = list(generate(400))
    first = shape(assign(papers, ()))
    assert shape(assign(papers, ())) == first
    random.Random(3).shuffle(papers)
    assert shape(assign(papers, ())) == first


def test_sample_papers_land_in_areas_with_a_small_remaining_share() -> None:
    sections = assign(samples(), ())
    by_name = {s.name: s for s in sections}
    area_sections = [s for s in sections if s.area]
    placed = sum(len(s.papers) for s in area_sections)
    assert placed >= 0.8 * len(samples())
    remaining = by_name.get(REMAINING)
    assert remaining is None or len(remaining.papers) <= 0.10 * len(samples())
    moe = by_name["Mixture of experts"]
    assert moe.area and moe.slug == "mixture-of-experts"
    assert any("Mixture of Experts" in p.title for p in moe.papers)
    assert all(r.startswith("area Mixture of experts") for r in moe.reasons)


def test_a_configured_theme_still_wins_over_an_area() -> None:
    theme = ThemeConfig("Sparse models", ("mixture of experts", "moe", "router"))
    sections = assign(samples(), (theme,))
    mine = next(s for s in sections if s.name == "Sparse models")
    assert mine.configured
    area = next((s for s in sections if s.name == "Mixture of experts"), None)
    titled = [p for p in samples() if re.search(r"mixture[- ]of[- ]experts", p.title, re.I)]
    assert all(p in mine.papers for p in titled)
    assert area is None or not any(p in area.papers for p in titled)


def test_a_configured_theme_takes_the_papers_of_the_area_with_its_slug() -> None:
    """A theme named "Music" owns the slug music: the papers whose own area is music go
    to it, although that area prints under the audio section otherwise."""
    sections = assign([*MUSIC, *generate(40)], (ThemeConfig("Music", ("zzz-unused",)),))
    theme = next(s for s in sections if s.slug == "music")
    assert theme.configured and len(theme.papers) >= len(MUSIC)
    assert {p.title for p in MUSIC} <= {p.title for p in theme.papers}
    assert set(theme.areas) == {"music"}
    audio = [s for s in sections if s.slug == "audio"]
    assert all("music" not in s.areas for s in audio)


def paper(title: str, abstract: str) -> Paper:
    return Paper(title, abstract)


MUSIC = [
    paper(f"Melody model {i}", f"We generate music and songs with melody {i} and chords.")
    for i in range(6)
]


@pytest.mark.parametrize(
    "title, abstract",
    [
        ("Deep learning", "Deep learning model for learning deep models with a model."),
        ("The", "The and of the and of a the and of the, and the of a."),
    ],
)
def test_papers_that_share_every_word_still_get_sections(title: str, abstract: str) -> None:
    """Words in every paper (or only stop words) leave nothing to compare papers by:
    sectioning still succeeds, with each paper in exactly one section."""
    papers = [paper(f"{title} {i}", abstract) for i in range(60)]
    sections = assign(papers, ())
    placed = sorted(p.title for s in sections for p in s.papers)
    assert placed == sorted(p.title for p in papers)


def _where(sections: list[Section[Paper]]) -> dict[str, tuple[str, str, str]]:
    """Each paper's (area, section slug, section name), by title."""
    return {
        p.title: (s.area_of(k), s.slug, s.name) for s in sections for k, p in enumerate(s.papers)
    }


@pytest.mark.parametrize("n", [5, 50, 500])
def test_an_area_prints_under_the_same_section_whatever_the_issue_size(n: int) -> None:
    """Music papers are music papers in an issue of 5, 50 or 500: same area, same section
    name and slug (no fold-up of a small area, no split of a big one)."""
    vocabulary = bundled()
    songs = MUSIC[:3]
    where = _where(assign([*songs, *generate(n - len(songs))], ()))
    assert {where[p.title] for p in songs} == {("music", "audio", "Music, speech and audio")}
    for area, slug, _ in where.values():
        if area in vocabulary.by_slug:
            assert slug == vocabulary.section_of(area)


def test_every_paper_has_its_own_area_at_or_below_its_section() -> None:
    vocabulary = bundled()
    groups = {a.slug for a, ok in zip(vocabulary, assignable(vocabulary), strict=True) if not ok}
    assert {"language-models", "efficient-architectures", "visual-generation"} <= groups
    sections = assign(samples(), ())
    assert not {s.slug for s in sections} & groups  # a group is never a printed section
    kinds = set()
    for s in sections:
        assert len(s.areas) == len(s.papers)
        for k in range(len(s.papers)):
            area = s.area_of(k)
            if s.area:
                assert area in vocabulary.descendants(s.slug), (s.slug, area)
                kinds.add("below" if area != s.slug else "itself")
            else:
                assert area == s.slug
    assert kinds == {"below", "itself"}


def test_the_paper_that_fits_best_leads_its_section() -> None:
    """Fit first, then sightings: a paper named by one stray word never leads, however
    often it was listed."""
    stray = Paper(
        "A study of optimisers for language models",
        "We compare learning rates and optimisers; one of our runs uses music.",
        sightings=9,
    )
    plain = Paper("Melody model", "We generate music.", sightings=3)
    best = Paper(
        "Music generation with melody and chords",
        "We generate music and songs: melody, chords, lyrics and accompaniment for singing.",
        sightings=1,
    )
    others = [*MUSIC, *generate(40)]
    sections = assign([stray, plain, best, *others], ())
    audio = next(s for s in sections if s.slug == "audio")
    titles = [p.title for p in audio.papers]
    assert titles[0] == best.title
    assert stray.title in titles and titles[0] != stray.title
    assert audio.weak[titles.index(stray.title)]
    assert audio.weak == sorted(audio.weak)  # every weak paper after every other
    strong = [f for f, weak in zip(audio.fits, audio.weak, strict=True) if not weak]
    assert strong == sorted(strong, reverse=True)


def test_the_remaining_share_stays_under_a_tenth_for_generated_digests() -> None:
    for n in (50, 300, 2000):
        sections = assign(generate(n), ())
        remaining = sum(len(s.papers) for s in sections if s.name == REMAINING)
        assert remaining <= 0.10 * n, n


# ----------------------------------------------------------------------------- command


@pytest.fixture
def sample_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "dumps").mkdir()
    for f in SAMPLE_FILES:
        shutil.copy2(f, tmp_path / "dumps" / f.name)  # keeps the mtime: a settled file
    (tmp_path / "digest.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    return tmp_path


def test_themes_tsv_round_trips(sample_dir: Path) -> None:
    result = CliRunner().invoke(main, ["themes", "--format", "tsv"], catch_exceptions=False)
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.output), delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0] == ["title", "section", "reason"]
    assert all(len(r) == 3 for r in rows)
    got = {r[0]: r[1] for r in rows[1:]}
    expected = {p.title: s.name for s in assign(samples(), ()) for p in s.papers}
    assert got == {" ".join(t.split()): n for t, n in expected.items()}
    assert all(r[2] for r in rows[1:])  # every paper says why
    again = CliRunner().invoke(main, ["themes", "--format", "tsv"], catch_exceptions=False)
    assert again.output == result.output


def test_themes_shows_dumps_copied_a_moment_ago(sample_dir: Path) -> None:
    """`digest themes` is a look, not a publish: a dump just dropped (its mtime now, as
    `cp` leaves it) is sectioned at once, not left waiting for the settle time."""
    for f in (sample_dir / "dumps").iterdir():
        os.utime(f)  # modified "now"
    result = CliRunner().invoke(main, ["themes", "--format", "tsv"], catch_exceptions=False)
    assert result.exit_code == 0
    assert len(result.output.splitlines()) == 1 + 176
    assert not (sample_dir / "state" / "digest.db").exists()  # and nothing was stored


def test_themes_json_has_the_summary(sample_dir: Path) -> None:
    result = CliRunner().invoke(main, ["themes", "--format", "json"], catch_exceptions=False)
    rows = json.loads(result.output)
    assert len(rows) == 176
    assert {"title", "section", "reason", "slug", "kind", "summary"} <= set(rows[0])
    iter_comp = next(r for r in rows if r["title"].startswith("IterComp"))
    assert iter_comp["summary"].startswith("We introduce IterComp")


def test_themes_json_gives_each_paper_its_own_area_under_its_section(sample_dir: Path) -> None:
    result = CliRunner().invoke(main, ["themes", "--format", "json"], catch_exceptions=False)
    rows = json.loads(result.output)
    vocabulary = bundled()
    for row in rows:
        if row["kind"] == "area":
            assert row["slug"] == vocabulary.section_of(row["area"])
            assert row["section"] == vocabulary.by_slug[row["slug"]].name
        else:
            assert row["area"] == row["slug"]
    assert "music" in {r["area"] for r in rows if r["slug"] == "audio"}


def test_areas_command_lists_the_tree(sample_dir: Path) -> None:
    result = CliRunner().invoke(main, ["areas"], catch_exceptions=False)
    assert result.exit_code == 0
    assert str(BUNDLED) in result.output
    assert re.search(r"^  Mixture of experts  \[mixture-of-experts\]$", result.output, re.M)


# ----------------------------------------------------------------------------- summaries


def test_the_summary_is_the_contribution_sentence() -> None:
    abstract = (
        "Large language models have garnered unprecedented advancements across diverse "
        "fields. However, they remain costly, e.g. when serving many users. In this paper, "
        "we propose FooNet, a sparse router that halves the cost. Experiments show gains."
    )
    assert summarise(abstract) == "We propose FooNet, a sparse router that halves the cost."
    assert (
        summarise(
            "Models struggle with X. Inspired by this, we introduce Bar, a benchmark of 5k tasks. "
            "We show that Bar is hard."
        )
        == "We introduce Bar, a benchmark of 5k tasks."
    )
    found = "Scaling is studied. Prior work is limited. We find that depth matters more than width."
    assert summarise(found) == "We find that depth matters more than width."
    assert summarise("A plain description without any cue words at all. Another one.") == (
        "A plain description without any cue words at all."
    )
    assert summarise("") == ""


def test_the_summary_never_returns_latex_and_is_trimmed_at_a_word() -> None:
    abstract = (
        "Background here. We present \\textbf{Baz}, a {\\it simple} method with $\\alpha$~"
        "scaling that reaches 95\\% accuracy; code at https://example.org/baz{https://example.org/baz}."
    )
    line = summarise(abstract)
    assert line.startswith("We present Baz, a simple method")
    assert not re.search(r"[\\{}$~^]|https?://", line), line
    long = "We introduce " + " ".join(f"word{i}" for i in range(80)) + "."
    cut = summarise(long, limit=60)
    assert len(cut) <= 60 and cut.endswith("…")
    assert re.fullmatch(r"We introduce( word\d+)+…", cut), cut


def test_sentences_do_not_break_at_abbreviations() -> None:
    text = "We use tools, e.g. search, et al. In Fig. 2 we show it.Then more."
    assert sentences(text) == [
        "We use tools, e.g. search, et al.",
        "In Fig. 2 we show it.",
        "Then more.",
    ]


@dataclass(frozen=True)
class _Stored:
    key: str
    title: str
    abstract: str
    links: tuple[()] = ()
    sightings: int = 1
    position: int = 0


def test_the_email_shows_the_summary_and_links_the_full_abstract(tmp_path: Path) -> None:
    from digest.config import Settings
    from digest.render.viewmodel import digest_view

    p = _Stored("k", "FooNet", "Models are big. We propose FooNet, a small model. It works.")
    section = Section[_Stored]("Language models", "language-models", [p], reasons=["r"])
    view = digest_view(
        Settings(base_dir=tmp_path), 1, [section], __import__("datetime").datetime(2026, 1, 1)
    )  # type: ignore[list-item]
    shown = view.sections[0].papers[0]
    assert shown.summary == "We propose FooNet, a small model."
    assert shown.short_abstract == shown.summary and shown.truncated


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=600))
def test_the_summary_of_any_text_is_short_plain_text(text: str) -> None:
    line = summarise(text, limit=120)
    assert len(line) <= 120
    assert "\\" not in line and "$" not in line and "{" not in line and "}" not in line
    assert line == " ".join(line.split())


def test_an_acronym_alone_gives_way_to_the_sentence_that_says_what_it_does() -> None:
    abstract = (
        "Reward models are hard to train on mixed preference data. "
        "We propose the Double-Layer MoE RM (DMoERM). "
        "DMoERM first routes each input to a task expert, then trains capability experts "
        "with LoRA on each. Experiments show gains."
    )
    assert summarise(abstract).startswith("DMoERM first routes each input to a task expert")
    # a contribution sentence that says what the thing is still wins
    named = "We propose the Foo Model (FM), a router that halves the cost. FM is fast."
    assert summarise(named) == "We propose the Foo Model (FM), a router that halves the cost."
    towards = "We propose the Foo architecture towards cheap routing. We show FM is fast."
    assert summarise(towards) == "We propose the Foo architecture towards cheap routing."
    by = (
        "Songs are long. We tackle long-form music generation by introducing Yo, a family "
        "of open models. We demonstrate that Yo matches closed systems."
    )
    assert summarise(by).startswith("We tackle long-form music generation by introducing Yo")


def test_a_background_sentence_is_not_the_summary() -> None:
    abstract = (
        "Recent advances in diffusion models have transformed image synthesis. "
        "However, editing remains slow. "
        "Our method edits an image in one step by inverting the sampler."
    )
    assert summarise(abstract) == "Our method edits an image in one step by inverting the sampler."
    survey = (
        "Mixtures of experts have become popular. This survey maps the designs of MoE "
        "layers and their uses. We first briefly introduce the MoE layer."
    )
    assert summarise(survey).startswith("This survey maps the designs")


def test_a_long_summary_is_cut_at_a_clause_not_in_the_middle_of_a_list() -> None:
    clause = (
        "We introduce Foo, a benchmark of hard reasoning problems written by experts in "
        "twelve fields, which shows that models of every size fail on most of them."
    )
    assert summarise(clause, limit=120) == (
        "We introduce Foo, a benchmark of hard reasoning problems written by experts in "
        "twelve fields…"
    )
    listed = (
        "We introduce Foo, a benchmark of hard problems for checking frontier models "
        "including math, coding, physics, chemistry, biology, law, medicine and finance."
    )
    assert summarise(listed, limit=120) == (
        "We introduce Foo, a benchmark of hard problems for checking frontier models…"
    )


def test_each_published_paper_keeps_its_own_area_at_or_below_its_section(
    settings: Settings,
) -> None:
    app = make_app(settings)
    report = publishing.send(app)
    assert report.prepared is not None
    vocabulary = app.vocabulary()
    with app.session() as s:
        rows = list(s.execute(select(DigestItem.section_slug, DigestItem.area_slug)))
    assert len(rows) == report.prepared.view.paper_count
    for section, area in rows:
        if section in vocabulary.by_slug:
            assert area in vocabulary.descendants(section), (section, area)
            assert vocabulary.section_of(area) == section
        else:  # a discovered topic or the remaining section is its papers' area
            assert area == section
    assert any(area != section for section, area in rows)  # e.g. music under audio


def test_small_sections_are_gathered_under_briefly_in_the_layout_only(sample_dir: Path) -> None:
    result = CliRunner().invoke(main, ["themes", "--format", "tsv"], catch_exceptions=False)
    listed = {r[0]: r[1] for r in csv.reader(io.StringIO(result.output), delimiter="\t")}
    report = publishing.send(make_app(load_settings(None)))
    assert report.prepared is not None
    sections = report.prepared.view.sections
    brief = [s for s in sections if s.brief]
    assert len(brief) >= 2 and all(s.size <= 2 for s in brief)
    kinds = [s.brief for s in sections if s.name != REMAINING]
    assert kinds == sorted(kinds)  # every full section first, then the brief ones
    page, text = report.prepared.html, report.prepared.text
    assert page.count(">Briefly</h2>") == 1 and text.count("BRIEFLY") == 1
    for s in brief:
        url, name = re.escape(html.escape(s.page_url)), re.escape(html.escape(s.name))
        link = rf'href="{url}"[^>]*>{name}</a>'
        assert len(re.findall(link, page)) == len(s.papers)  # each labelled with its section
        assert text.count(f"[{s.name}]") == len(s.papers)
        for p in s.papers:  # `themes` reports the section, never the layout group
            assert listed[" ".join(p.title.split())] == s.name
    assert "Briefly" not in listed.values()
