"""How a dump's last paper ends: a long unbroken last word parses in linear time, a file
still being written keeps only whole papers, and a settled file is read whole."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from digest.app import ingesting, make_app
from digest.ingest.parse import parse_bytes
from digest.state.models import Paper
from tests.support.dumps import write_dump
from tests.support.settings import make_settings
from tests.support.waiting import hang_deadline

MTIME = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HEADER = "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nMar 14\n\n"
WHOLE = (
    "We study one thing in depth, across many settings and data sets, "
    "and find that it works well in each of them."
)
OPEN = (
    "We study another thing at scale, with careful ablations on several models and "
    "tasks, and compare it with the strongest baselines we know of. It holds up on every "
    "benchmark we tried, from small to large, and we explain where it fails and why. "
    "We hope it helps others who work on the same problem. Code and data will be released"
)  # how one sample abstract in 195 ends: whole, but without a full stop
# What the parser took for a whole ending before (a sentence's end, or a last word that
# is a link), as a reference for short inputs.
REFERENCE = re.compile(r"(?:[.!?…。][\"'’”)\]}>]*|\S*(?:://|www\.)\S*)$")


def dump(last_abstract: str) -> bytes:
    return f"{HEADER}One\n\n{WHOLE}\n\nTwo\n\n{last_abstract}\n".encode()


def titles(data: bytes, *, settled: bool) -> list[str]:
    listing = parse_bytes(data, name="d.txt", mtime=MTIME, settled=settled)
    return [p.title for p in listing.papers]


# --- linear time ----------------------------------------------------------------------------

MEGABYTES = 2_000_000  # the quadratic parser took 264 s on 0.2 MB; this would take hours


@pytest.mark.parametrize(
    ("tail", "kept"),
    [
        ("x" * MEGABYTES, ["One"]),  # stops mid-word: the file may still be growing
        ("https://" + "x" * MEGABYTES, ["One", "Two"]),  # ends in a link: whole
        ("www" * (MEGABYTES // 3), ["One"]),
        ("." + "a" * MEGABYTES, ["One"]),
        ("a" * MEGABYTES + ".", ["One", "Two"]),
    ],
    ids=["letters", "a-link", "www-www", "dot-then-letters", "letters-then-dot"],
)
def test_a_two_megabyte_unbroken_last_word_parses(tail: str, kept: list[str]) -> None:
    data = dump(f"{WHOLE} {tail}")
    with hang_deadline("the parser to read a 2 MB last word"):
        assert titles(data, settled=False) == kept


# Characters that make a last word look like the start of a link or a sentence's end.
HOSTILE = st.text(alphabet=":/w.x)?… ", min_size=1, max_size=12).filter(str.strip)


@settings(max_examples=40, deadline=None)
@given(unit=HOSTILE, prefix=st.text(alphabet="ab ./:", max_size=20))
def test_any_long_last_abstract_parses_and_ends_by_the_same_rule(unit: str, prefix: str) -> None:
    """A last abstract of ~300 kB built from a hostile unit parses before a hang deadline
    (the quadratic search took minutes here), and its paper is kept exactly when the
    ending rule says it ends whole; a settled file keeps it whatever the ending."""
    data = dump(f"{WHOLE} {prefix}{unit * (300_000 // len(unit))}")
    with hang_deadline("the parser to read a 300 kB last abstract"):
        growing = titles(data, settled=False)
        settled = titles(data, settled=True)
    # The same abstract with the unit six times ends the same way (whether its last word
    # holds "://" or "www." settles after a few repeats), and is short enough for the
    # reference rule.
    short = " ".join(f"{WHOLE} {prefix}{unit * 6}".split())
    whole = REFERENCE.search(short) is not None
    assert growing == (["One", "Two"] if whole else ["One"])
    assert settled == ["One", "Two"]


# --- a settled file is read whole -----------------------------------------------------------


def test_a_growing_file_keeps_only_whole_papers() -> None:
    data = dump(OPEN)
    assert titles(data, settled=False) == ["One"]
    assert titles(data, settled=True) == ["One", "Two"]


def test_a_settled_dump_keeps_its_last_paper_even_without_a_full_stop(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    settings_ = make_settings(tmp_path, dumps)
    path = dumps / "d.txt"
    write_dump(path, [("One", WHOLE), ("Two", OPEN)])  # last modified an hour ago
    app = make_app(settings_)
    report = ingesting.ingest(app)
    assert [(d.status, d.papers) for d in report.dumps] == [("ingested", 2)]
    assert not [w for d in report.dumps for w in d.warnings if "skipped" in w]
    with app.session() as s:
        stored = {p.title: p.abstract for p in s.scalars(select(Paper))}
    assert stored == {"One": WHOLE, "Two": OPEN}
    # The same ending in a file modified a moment ago: it may still be being written.
    path = dumps / "e.txt"
    path.write_bytes(dump(OPEN).replace(b"One", b"Three").replace(b"Two", b"Four"))
    report = ingesting.ingest(app, [path])  # named explicitly: read now, not waited for
    assert [(d.status, d.papers) for d in report.dumps] == [("ingested", 1)]
    assert any("still being written" in w for w in report.dumps[0].warnings)
