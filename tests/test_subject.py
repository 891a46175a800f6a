"""Subjects that fit a phone: the count first, then the leading sections, at most
``email.subject_max`` characters, from the ``email.subject`` template checked at load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.errors import ConfigError
from digest.render.viewmodel import subject_line


@dataclass
class Sec:
    name: str


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
    assert subject_line("T", 3, 1, [Sec("More papers")]) == "#3 · 1 paper: More papers"
    assert subject_line("T", 3, 2, SECTIONS[:2]) == "#3 · 2 papers: Reasoning, Music & audio"
    titled = subject_line("Papers digest", 4, 9, SECTIONS, "{title} #{issue} ({count}): {sections}")
    assert titled.startswith("Papers digest #4 (9): Reasoning") and len(titled) <= 70


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
