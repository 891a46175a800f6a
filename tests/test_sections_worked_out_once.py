"""What depends on a paper alone is worked out once, when it is stored: its one-line
summary and where the vocabulary's terms occur in it are kept with it (paper_facts), equal
to what working them out now gives, and worked out again when the summariser or the
vocabulary changes. A publish reads them instead of redoing them; and the e-mail of a
long digest is fitted without rendering every paper."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from digest.app import App, ingesting, make_app, publishing
from digest.config import Settings
from digest.ingest.links import extract_links
from digest.mail.message import PLACEHOLDER
from digest.mail.variants import Personaliser, count
from digest.render.renderer import Renderer
from digest.render.viewmodel import DigestView, digest_view
from digest.sections import facts
from digest.sections.areas import bundled
from digest.sections.assign import assign
from digest.sections.match import words
from digest.sections.summary import summarise
from digest.state import papers, store
from digest.state.store import StoredPaper
from tests.support.papers import generate


def kept(app: App) -> tuple[list[StoredPaper], dict[int, tuple[str, str, int]]]:
    """The pending papers and the facts kept for them under the current version."""
    with app.session() as session:
        pending = store.pending_papers(session)
        table = papers.FactsTable(session)
        return pending, table.load([p.id for p in pending], facts.version(app.vocabulary()))


def test_ingest_keeps_each_papers_summary_and_terms_as_worked_out_now(settings: Settings) -> None:
    app = make_app(settings)
    ingesting.ingest(app)
    pending, rows = kept(app)
    assert len(pending) > 100
    assert set(rows) == {p.id for p in pending}  # every stored paper, at once
    vocabulary = app.vocabulary()
    for paper in pending:
        assert rows[paper.id][0] == summarise(paper.abstract)
        assert facts.decoded(rows[paper.id]) == facts.facts_of(
            paper.title, paper.abstract, vocabulary
        )
    assert sum(1 for row in rows.values() if facts.decoded(row).hits) > len(pending) // 2


def test_a_publish_uses_the_kept_summary(settings: Settings) -> None:
    app = make_app(settings)
    ingesting.ingest(app)
    pending, _ = kept(app)
    paper = pending[0]
    version = facts.version(app.vocabulary())
    with app.session() as session:
        papers.FactsTable(session).save(version, [(paper.id, "The kept line.", "[]", 1)])
        session.commit()
    with app.session() as session:
        prepared = publishing.prepare(app, session)
    assert prepared is not None
    shown = {p.key: p.summary for s in prepared.view.sections for p in s.papers}
    assert shown[paper.key] == "The kept line."
    assert shown[pending[1].key] == summarise(pending[1].abstract)


def test_facts_of_another_summariser_version_are_worked_out_again(settings: Settings) -> None:
    app = make_app(settings)
    ingesting.ingest(app)
    pending, _ = kept(app)
    paper = pending[0]
    with app.session() as session:  # as an older summariser left it
        papers.FactsTable(session).save("s0.t1.old", [(paper.id, "A stale line.", "[]", 1)])
        session.commit()
    with app.session() as session:
        prepared = publishing.prepare(app, session)
    assert prepared is not None
    shown = {p.key: p.summary for s in prepared.view.sections for p in s.papers}
    assert shown[paper.key] == summarise(paper.abstract) != "A stale line."
    ingesting.ingest(app)  # the next ingest keeps them (a publish writes nothing early)
    _, rows = kept(app)
    assert rows[paper.id][0] == summarise(paper.abstract)


def test_a_changed_vocabulary_works_the_terms_out_again(settings: Settings, tmp_path: Path) -> None:
    app = make_app(settings)
    ingesting.ingest(app)
    pending, before = kept(app)
    paper = next(p for p in pending if "pipeline" in words(p.abstract))
    assert not any(t == "pipeline" for t, _, _ in facts.decoded(before[paper.id]).hits)
    (tmp_path / "mine.toml").write_text(
        '[[area]]\nslug = "yardsticks"\nname = "Yardsticks"\n'
        'description = "Pipelines."\nterms = ["pipeline"]\n'
    )
    changed = make_app(replace(settings, digest=replace(settings.digest, areas_file="mine.toml")))
    assert facts.version(changed.vocabulary()) != facts.version(app.vocabulary())
    ingesting.ingest(changed)
    _, after = kept(changed)
    hits = facts.decoded(after[paper.id]).hits
    assert any(t == "pipeline" for t, _, _ in hits)
    assert facts.decoded(after[paper.id]) == facts.facts_of(
        paper.title, paper.abstract, changed.vocabulary()
    )


class CountingRenderer(Renderer):
    """The real renderer, noting how many papers each e-mail it renders shows."""

    def __init__(self) -> None:
        super().__init__()
        self.rendered: list[int] = []

    def email_html(self, view: DigestView, **kw: object) -> str:  # type: ignore[override]
        self.rendered.append(count(view))
        return super().email_html(view, **kw)  # type: ignore[arg-type]


def test_a_long_digests_email_is_fitted_without_rendering_every_paper(settings: Settings) -> None:
    when = datetime(2026, 3, 1, tzinfo=UTC)
    stored = [
        StoredPaper(i, f"k{i}", p.title, p.abstract, extract_links(p.abstract), when, 1, 0)
        for i, p in enumerate(generate(1500, seed=2))
    ]
    view = digest_view(settings, 7, assign(stored, [], vocabulary=bundled()), when)
    renderer = CountingRenderer()
    personaliser = Personaliser(
        renderer, f"https://x.org/u/{PLACEHOLDER}", 102_000, lambda v: v.subject
    )
    letter = personaliser.letter(view)
    assert max(renderer.rendered) < 1500 // 2
    assert 0 < letter.html.count('class="paper-title"') < 1500
    assert "the web copy has all of them" in letter.html
