"""A title of punctuation only ("???", "!!!") folds to an empty paper key. Such a paper
is kept, keyed by its title as written, with a warning; it is never dropped in silence,
nor taken for another punctuation-only paper."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from digest.app import ingesting, make_app
from digest.state.models import Paper
from tests.support.dumps import write_dump
from tests.support.settings import make_settings

ABSTRACT = (
    "We study {} in depth, across many settings and data sets, and find that it works "
    "well in each of them, which we explain with a small model of the training dynamics."
)


def test_punctuation_only_titles_are_kept_with_a_warning(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    titles = ["One Real Title", "???", "!!!", "Another Real Title"]
    papers = [(t, ABSTRACT.format(f"thing {i}")) for i, t in enumerate(titles)]
    write_dump(dumps / "d.txt", papers)
    app = make_app(make_settings(tmp_path, dumps))
    report = ingesting.ingest(app)
    assert [(d.status, d.papers, d.new_papers) for d in report.dumps] == [("ingested", 4, 4)]
    warned = [w for w in report.dumps[0].warnings if "no letters or digits" in w]
    assert len(warned) == 2 and "'???'" in warned[0] and "'!!!'" in warned[1], warned
    with app.session() as s:
        assert sorted(s.scalars(select(Paper.title))) == sorted(titles)
    write_dump(dumps / "e.txt", [("?!?", ABSTRACT.format("a fifth thing"))])
    again = ingesting.ingest(app)
    assert [(d.papers, d.new_papers) for d in again.dumps if d.status == "ingested"] == [(1, 1)]
