"""Subjects that fit a phone: the count first, then the leading sections (never the
catch-all), at most ``email.subject_max`` characters, from the ``email.subject``
template checked at load."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from digest.app import make_app, publishing
from digest.config import load_settings
from digest.errors import ConfigError
from digest.render.viewmodel import subject_line
from tests.support.dumps import write_dump
from tests.support.settings import make_settings


@dataclass
class Paper:
    title: str


@dataclass
class Sec:
    name: str
    papers: list[Paper] = field(default_factory=list)


SECTIONS = [
    Sec(n)
    for n in (
        "Reasoning", "Music & audio", "Mixture of experts", "Text-to-image", "Agents",
        "Long-context", "Video", "Retrieval", "Robotics", "Speech", "Safety", "More papers",
    )
]  # fmt: skip


def test_the_count_first_then_as_many_sections_as_fit() -> None:
    subject = subject_line("Papers digest", 12, 64, SECTIONS)
    assert subject == "#12 · 64 papers: Reasoning, Music & audio, Mixture of experts, +8"
    assert len(subject) <= 70
    short = subject_line("Papers digest", 12, 64, SECTIONS, limit=45)
    assert short == "#12 · 64 papers: Reasoning, Music & audio, +9"
    assert subject_line("T", 3, 2, SECTIONS[:2]) == "#3 · 2 papers: Reasoning, Music & audio"
    titled = subject_line("Papers digest", 4, 9, SECTIONS, "{title} #{issue} ({count}): {sections}")
    assert titled.startswith("Papers digest #4 (9): Reasoning") and len(titled) <= 70


def test_a_tiny_issue_never_names_the_catch_all() -> None:
    rest = [Sec("More papers", [Paper("A later paper")])]
    assert subject_line("T", 3, 1, rest) == "#3 · 1 paper"
    assert subject_line("T", 3, 2, [Sec("More papers", [Paper("A"), Paper("B")])]) == (
        "#3 · 2 papers"
    )
    named = [Sec("Music and audio", [Paper("Songs from noise")])]
    assert subject_line("T", 3, 1, named) == "#3 · 1 paper: Music and audio"
    both = [Sec("Music and audio"), Sec("More papers")]
    assert subject_line("T", 3, 2, both) == "#3 · 2 papers: Music and audio"
    # whatever the template puts around {sections}, nothing dangles when there are none
    assert subject_line("T", 4, 1, rest, "{title} #{issue} ({count}): {sections}") == "T #4 (1)"
    assert subject_line("T", 4, 1, rest, "{sections} — #{issue}") == "#4"


def test_a_one_paper_issue_sent_for_real_is_not_called_more_papers(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    title = 'Quiet Lanes: <script>alert("x")</script> Routing Bicycles by Noise'
    write_dump(dumps / "one.txt", [(title, "We map it. " * 20)])
    app = make_app(make_settings(tmp_path, dumps))
    report = publishing.send(app)
    assert report.prepared is not None
    subject = report.prepared.view.subject
    assert subject.startswith("#1 · 1 paper") and "More papers" not in subject
    assert "Quiet" not in subject  # dump text stays out of the header


def test_section_names_are_values_never_template() -> None:
    evil = [Sec("{title} {0} {issue.__class__}"), Sec("B")]
    assert subject_line("T", 1, 2, evil) == "#1 · 2 papers: {title} {0} {issue.__class__}, B"


def test_a_section_name_longer_than_the_limit_is_cut() -> None:
    subject = subject_line("T", 1, 3, [Sec("Very long name " * 10)])
    assert len(subject) <= 70 and subject.endswith("…")


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("#{issue} {nope}", "uses {nope}; known fields: {issue}, {count}"),
        ("#{issue:>5}", "uses a format spec in {issue}"),
        ("#{issue!r}", "uses a format spec in {issue}"),
        ("#{issue", "is not a valid template"),
        ("{0}", "uses {0}"),
        ("{issue.real}", "uses {issue.real}"),
        ("  ", "must not be empty"),
    ],
)
def test_a_bad_template_is_refused_at_load(tmp_path: Path, template: str, problem: str) -> None:
    config = tmp_path / "digest.toml"
    config.write_text(f"[email]\nsubject = {template!r}\n".replace("'", '"'))
    with pytest.raises(ConfigError) as err:
        load_settings(config, environ={})
    assert "email.subject = " in err.value.message and problem in err.value.message
    assert str(config) in err.value.message
    with pytest.raises(ConfigError, match=r"SUBJECT_MAX = 5 is out of range: expected at least 20"):
        load_settings(None, environ={"DIGEST_EMAIL_SUBJECT_MAX": "5"})
