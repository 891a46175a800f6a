"""Watches and mutes: the phrases a reader lists (checked in one place), matched as the
area terms are (whole phrases, case, hyphens and punctuation folded), set with
`subscribers add --watch/--mute` and the CSV columns; a muted paper never reaches that
reader, a watched one always does, even outside their topics, and a mute beats both."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from digest.app import make_app, publishing, subscribing
from digest.config import Settings
from digest.mail.subscribers import SubscriberError
from digest.personal.phrases import MAX_PHRASE, MAX_PHRASES, PhraseError, Phrases, parse_phrases
from digest.program import main
from digest.state import readers
from digest.state.models import Subscriber
from tests.support.dumps import write_dump
from tests.support.readers import PAPERS, parts, publish, shows
from tests.support.settings import make_settings
from tests.support.web import serve


def test_phrases_are_checked_in_one_place() -> None:
    assert parse_phrases(" diffusion ;; Protein  folding;DIFFUSION; ") == (
        "diffusion",
        "Protein folding",
    )
    assert parse_phrases("") == ()
    for bad, why in (
        ("ok; bell\x07", "mute: control character U+0007"),
        ("line\nbreak", "mute: control character U+000A"),
        ("x" * (MAX_PHRASE + 1), f"more than {MAX_PHRASE}"),
        (";".join(f"w{i}" for i in range(MAX_PHRASES + 1)), f"more than {MAX_PHRASES}"),
        ("ok; !!!", "has no letter or digit"),
        ("a;" * 1500, "characters, more than"),
    ):
        with pytest.raises(PhraseError, match=re.escape(why)) as err:
            parse_phrases(bad, "mute")
        assert "\n" not in str(err.value) and str(err.value).startswith("mute: ")


def test_matching_is_whole_phrase_and_folded_like_area_terms() -> None:
    index = Phrases(PAPERS)
    assert index.papers("protein folding") == {3}  # hyphen folded
    assert index.papers("PROTEIN-FOLDING!") == {3}
    assert index.papers("diffusion") == {3, 4}  # title or abstract
    assert index.papers("diffusion models") == {3}
    assert index.papers("models diffusion") == set()  # a phrase, not a bag of words
    assert index.papers("expert") == set()  # whole words: "experts" is another word
    assert index.papers("moe") == {1}
    assert index.papers("routers benchmark") == set()
    assert index.first_match(["benchmark", "diffusion"]) == {
        1: "benchmark",
        4: "benchmark",
        3: "diffusion",
    }


# --------------------------------------------------------------------------- setting them


def test_subscribers_add_sets_updates_and_clears_watches_and_mutes(settings: Settings) -> None:
    app = make_app(settings)
    book = subscribing.book(app)
    assert (
        book.add("ada@example.org", watch="diffusion; Protein folding", mute="benchmark") == "added"
    )
    with app.session() as s:
        assert readers.phrases_of(s, "ada@example.org") == (
            "diffusion; Protein folding",
            "benchmark",
        )
    assert book.add("ada@example.org", watch="music") == "updated"
    assert book.add("ada@example.org", watch="music") == "unchanged"
    assert book.add("ada@example.org", mute="") == "updated"
    with app.session() as s:
        assert readers.phrases_of(s, "ada@example.org") == ("music", "")
    with pytest.raises(SubscriberError, match=r"^watch: control character U\+001B"):
        book.add("ada@example.org", watch="\x1b[31mred")
    with app.session() as s:
        assert readers.phrases_of(s, "ada@example.org") == ("music", "")  # nothing stored


def test_the_cli_takes_watch_and_mute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    (tmp_path / "dumps").mkdir()
    runner = CliRunner()
    env: dict[str, str] = {}
    done = runner.invoke(
        main,
        [
            "subscribers",
            "add",
            "ada@example.org",
            "--watch",
            "diffusion;MoE",
            "--mute",
            "benchmark",
        ],
        env=env,
    )
    assert done.exit_code == 0, done.output
    out = runner.invoke(main, ["subscribers", "export"], env=env)
    assert out.output.splitlines() == [
        "email,name,themes,status,watch,mute,more,less",
        "ada@example.org,,,active,diffusion; MoE,benchmark,,",
    ]
    cleared = runner.invoke(main, ["subscribers", "add", "ada@example.org", "--watch", ""], env=env)
    assert cleared.exit_code == 0 and "updated" in cleared.output
    bad = runner.invoke(
        main, ["subscribers", "add", "ada@example.org", "--mute", "x" * 101], env=env
    )
    assert bad.exit_code != 0
    assert "mute: phrase" in bad.output and "more than 100" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    out = runner.invoke(main, ["subscribers", "export"], env=env)
    assert out.output.splitlines()[1] == "ada@example.org,,,active,,benchmark,,"
    gone = runner.invoke(main, ["subscribers", "remove", "ada@example.org"], env=env)
    assert gone.exit_code == 0
    out = runner.invoke(main, ["subscribers", "export"], env=env)
    assert out.output.splitlines() == ["email,name,themes,status,watch,mute,more,less"]


def test_csv_import_and_export_round_trip_watch_and_mute(settings: Settings) -> None:
    app = make_app(settings)
    book = subscribing.book(app)
    rows = (
        "email,name,themes,status,watch,mute\n"
        'ada@example.org,Ada,,active,"diffusion; protein folding",benchmark\n'
        "grace@example.org,Grace,,active,=cmd|calc,\n"
        "bad@example.org,Bad,,active,ok,\x07bell\n"
        f"long@example.org,Long,,active,{'y' * 200},\n"
    )
    report = book.import_csv(io.StringIO(rows))
    assert report.added == 2
    assert report.errors == [
        (4, "mute: control character U+0007 is not allowed"),
        (5, f"watch: phrase {'y' * 30!r}… is 200 characters, more than {MAX_PHRASE}"),
    ]
    first = io.StringIO()
    book.export_csv(first)
    lines = first.getvalue().splitlines()
    assert lines[1] == "ada@example.org,Ada,,active,diffusion; protein folding,benchmark,,"
    assert lines[2] == "grace@example.org,Grace,,active,'=cmd|calc,,,"  # never run as a formula
    # export -> import into a fresh list -> the same export
    other = replace(
        settings,
        digest=replace(
            settings.digest,
            state_dir=str(Path(settings.state_dir).parent / "other"),
            database_url="",
        ),
    )
    again = subscribing.book(make_app(other))
    assert again.import_csv(io.StringIO(first.getvalue())).errors == []
    second = io.StringIO()
    again.export_csv(second)
    assert second.getvalue() == first.getvalue()
    # a file without the columns leaves them alone; an empty cell clears
    book.import_csv(io.StringIO("email,name\nada@example.org,Ada Lovelace\n"))
    with app.session() as s:
        assert readers.phrases_of(s, "ada@example.org") == (
            "diffusion; protein folding",
            "benchmark",
        )
    book.import_csv(io.StringIO("email,watch\nada@example.org,\n"))
    with app.session() as s:
        assert readers.phrases_of(s, "ada@example.org") == ("", "benchmark")


def test_remove_forgets_watches_and_mutes(settings: Settings) -> None:
    app = make_app(settings)
    book = subscribing.book(app)
    book.add("ada@example.org", watch="diffusion", mute="benchmark")
    assert book.remove("ada@example.org")
    with app.session() as s:
        assert readers.phrases_of(s, "ada@example.org") is None
        assert readers.every_phrases(s) == {}
    book.add("ada@example.org")
    with app.session() as s:
        assert readers.phrases_of(s, "ada@example.org") == ("", "")


# --------------------------------------------------------------------------- the e-mails


def test_a_muted_paper_never_reaches_that_reader_and_a_watched_one_always_does(
    tmp_path: Path, database_url: str
) -> None:
    got = publish(
        tmp_path,
        database_url,
        {
            "ada@example.org": {"mute": "benchmark"},
            "grace@example.org": {},
            "alan@example.org": {
                "themes": "Music and audio",
                "watch": "protein folding; diffusion",
                "mute": "BENCHMARK",
            },
        },
    )
    titles = [t for t, _ in PAPERS]
    # Ada: every section, without the two benchmark papers (one matches in its abstract)
    ada = [shows(got["ada@example.org"], t) for t in titles]
    assert ada == [True, False, True, True, False, True]
    # Grace watches and mutes nothing: everything, and no For-you block
    assert all(shows(got["grace@example.org"], t) for t in titles)
    assert "For you" not in parts(got["grace@example.org"])[0]
    # Alan chose music only; his watches reach past it, his mute beats his watch
    alan = [shows(got["alan@example.org"], t) for t in titles]
    assert alan == [False, False, True, True, False, False]
    # the headers are his sections' letter's: nothing he typed is in them
    assert "protein" not in str(got["alan@example.org"].items()).lower()


def test_the_preferences_page_sets_watches_and_mutes(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    write_dump(dumps / "a.txt", PAPERS)
    app = make_app(make_settings(tmp_path, dumps))
    publishing.publish(app)
    subscribing.book(app).add("ada@example.org", watch="diffusion", mute="bench & <mark>")
    with app.session() as s:
        token = str(s.scalar(select(Subscriber.token).where(Subscriber.key == "ada@example.org")))
    for site in serve(app):
        status, _, body = site.get(f"/preferences/{token}")
        page = body.decode()
        assert status == 200
        assert 'name="watch" value="diffusion"' in page
        assert 'name="mute" value="bench &amp; &lt;mark&gt;"' in page  # data, not markup
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
        same = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": f"http://127.0.0.1:{site.port}",
            "Sec-Fetch-Site": "same-origin",
        }
        form = f"csrf={csrf}&watch=protein+folding%3B+music&mute="
        status, _, body = site.get(f"/preferences/{token}", same, "POST", form)
        assert status == 200 and b"Saved" in body
        with app.session() as s:
            assert readers.phrases_of(s, "ada@example.org") == ("protein folding; music", "")
        bad = f"csrf={csrf}&watch=ok&mute=%07"
        status, _, body = site.get(f"/preferences/{token}", same, "POST", bad)
        assert status == 400 and body.strip().endswith(
            b"mute: control character U+0007 is not allowed"
        )
        with app.session() as s:  # nothing of the refused form was stored
            assert readers.phrases_of(s, "ada@example.org") == ("protein folding; music", "")


def test_a_watch_reaches_a_reader_none_of_whose_topics_is_in_the_issue(
    tmp_path: Path, database_url: str
) -> None:
    """No paper of Alan's topic (robotics) is in the issue: without a watch he gets no
    letter; with one, a letter of only For you, under the issue's own subject."""
    got = publish(
        tmp_path,
        database_url,
        {
            "alan@example.org": {"themes": "Robotics and embodied agents", "watch": "diffusion"},
            "ada@example.org": {},
        },
        more={"joan@example.org": {"themes": "Robotics and embodied agents"}},
    )
    assert set(got) == {"alan@example.org", "ada@example.org"}
    html, text = parts(got["alan@example.org"])
    assert "Protein-Folding with Diffusion Models" in html
    assert "A Diffusion Benchmark for Images" in html
    assert "Music Generation" not in html and "Music Generation" not in text
    assert "No new papers" not in html and "No new papers" not in text
    assert "(matched: diffusion)" in text
    assert got["alan@example.org"]["Subject"] == got["ada@example.org"]["Subject"]
