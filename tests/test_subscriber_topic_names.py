"""How a topic may be named when subscribers are added or imported: its slug, its name or
an old slug, at any level of the tree; anything else is refused, with the closest topic."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.mail.subscribers import SubscriberError, resolve_themes
from digest.program import main
from digest.sections.areas import load_vocabulary
from tests.test_subscriber_chosen_topics import AREAS


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    (tmp_path / "dumps").mkdir()
    (tmp_path / "areas.toml").write_text(AREAS)
    (tmp_path / "digest.toml").write_text('[digest]\nareas_file = "areas.toml"\n')

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args))

    return invoke


def listed(run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    out = run("subscribers", "list").output
    return {line.split("\t")[0]: line.split("\t")[2] for line in out.splitlines() if "\t" in line}


def test_add_takes_a_name_a_slug_or_an_old_slug_at_any_level(run) -> None:  # type: ignore[no-untyped-def]
    assert run("subscribers", "add", "a@example.org", "--topics", "Sound and music").exit_code == 0
    assert run("subscribers", "add", "b@example.org", "--topics", "speech").exit_code == 0
    assert run("subscribers", "add", "c@example.org", "--topics", "music-generation").exit_code == 0
    old = run("subscribers", "add", "d@example.org", "--themes", "SPEECH;vision")  # old spelling
    assert old.exit_code == 0
    assert listed(run) == {
        "a@example.org": "sound",
        "b@example.org": "speech",
        "c@example.org": "music",
        "d@example.org": "speech;vision",
    }
    refused = run("subscribers", "add", "e@example.org", "--topics", "musik")
    assert refused.exit_code == 1
    assert "unknown topic 'musik'; did you mean 'Music'?" in refused.output
    assert "e@example.org" not in listed(run)


def test_import_refuses_an_unknown_topic_row_by_row_with_the_closest(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "in.csv").write_text(
        "email,name,topics\n"
        "a@example.org,A,Sound and music\n"
        "b@example.org,B,nonexistent-theme\n"
        "c@example.org,C,speach;vision\n"
        "d@example.org,D,music-generation\n"
    )
    result = run("subscribers", "import", "in.csv")
    assert result.exit_code == 1
    assert "line 3: unknown topic 'nonexistent-theme'" in result.output
    assert "line 4: unknown topic 'speach'; did you mean 'Speech'?" in result.output
    assert "2 added, 0 updated, 0 unchanged" in result.output
    assert listed(run) == {"a@example.org": "sound", "d@example.org": "music"}


def test_old_spellings_still_work_and_say_they_are_old(run) -> None:  # type: ignore[no-untyped-def]
    top = run("--help").output
    assert "topics " in top and "Old name of `digest topics`" in top
    old, new = run("themes", "--format", "tsv"), run("topics", "--format", "tsv")
    assert old.exit_code == new.exit_code == 0 and old.output == new.output
    add = " ".join(run("subscribers", "add", "--help").output.split())
    assert "--topics, --themes" in add and "--themes: the old spelling" in add


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("Music generation", "Music generation and understanding"),
        ("music gen", "Music generation and understanding"),
        ("Mixture of expert", "Mixture of experts"),
        ("musik", "Music generation and understanding"),
    ],
)
def test_the_closest_topic_to_the_start_of_a_name_is_that_name(typed: str, meant: str) -> None:
    """Typing the first words of a topic's name suggests that topic, not one whose name
    has more letters in common ("Music generation" was answered with "Code generation")."""
    choices = [(a.slug, a.name) for a in load_vocabulary("").areas]
    with pytest.raises(SubscriberError) as refused:
        resolve_themes(typed, choices)
    assert f"unknown topic {typed!r}; did you mean {meant!r}?" in str(refused.value)


def test_a_name_with_no_words_gets_no_suggestion() -> None:
    choices = [(a.slug, a.name) for a in load_vocabulary("").areas]
    with pytest.raises(SubscriberError) as refused:
        resolve_themes("!!!", choices)
    assert str(refused.value) == "unknown topic '!!!' (see `digest areas`)"
