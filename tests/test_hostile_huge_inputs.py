"""Huge inputs: a backlog larger than one issue, a dump over the size
limit, and an e-mail rendered only from what it shows. Time and memory figures are in
tests/bench/bench_huge.py; these tests check the behaviour that keeps them bounded."""

from __future__ import annotations

import mailbox
from dataclasses import replace
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import feedparser
from click.testing import CliRunner
from sqlalchemy import func, select

from digest.app import ingesting, make_app, publishing
from digest.app.publishing import FEED_ENTRY_BYTES
from digest.config import Settings
from digest.program import main
from digest.render.renderer import Renderer
from digest.render.viewmodel import DigestView
from digest.state.models import DigestItem, DumpFile, Paper

from .support.dumps import write_dump
from .support.papers import generate
from .support.settings import make_settings


def settings_with(tmp_path: Path, dumps: Path, **digest_kw: Any) -> Settings:
    return make_settings(tmp_path, dumps, **digest_kw)


def test_a_backlog_over_the_limit_goes_oldest_first_and_the_rest_waits(
    tmp_path: Path, dumps_dir: Path
) -> None:
    settings = settings_with(tmp_path, dumps_dir, max_papers_per_digest=70)
    app = make_app(settings)
    first = publishing.send(app)
    assert first.issue == 1 and first.prepared is not None
    assert first.prepared.view.paper_count == 70
    assert first.waiting == 176 - 70
    with app.session() as s:
        oldest = [p.id for p in s.scalars(select(Paper).order_by(Paper.first_dump_id, Paper.id))]
        in_first = set(s.scalars(select(DigestItem.paper_id)))
    # the first dump's 61 papers, then the oldest of the second
    assert set(oldest[:61]) <= in_first
    reports = [publishing.send(app), publishing.send(app)]
    assert [r.issue for r in reports] == [2, 3]
    assert reports[-1].waiting == 0
    with app.session() as s:
        published = list(s.scalars(select(DigestItem.paper_id)))
        papers = s.scalar(select(func.count()).select_from(Paper))
    assert len(published) == len(set(published)) == papers == 176  # each exactly once
    assert publishing.send(app).issue is None  # nothing left


def test_the_cli_says_how_many_papers_wait(tmp_path: Path, dumps_dir: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[digest]\ndumps_dir = "{dumps_dir}"\nstate_dir = "state"\nmax_papers_per_digest = 100\n'
    )
    result = CliRunner().invoke(main, ["-c", str(config), "send"])
    assert result.exit_code == 0, result.output
    assert "76 more pending paper(s) wait for the next issue" in result.output
    assert "digest.max_papers_per_digest = 100" in result.output


def test_a_dump_over_the_size_limit_is_refused_unread(tmp_path: Path, dumps_dir: Path) -> None:
    big = dumps_dir / "000_2d83581627280318.txt"
    settings = settings_with(tmp_path, dumps_dir, max_dump_bytes=big.stat().st_size - 1)
    small = [f for f in sorted(dumps_dir.iterdir()) if f.stat().st_size < big.stat().st_size]
    for f in sorted(dumps_dir.iterdir()):
        if f not in small and f != big:
            f.unlink()
    report = ingesting.ingest(make_app(settings))
    refused = [d for d in report.dumps if d.status == "failed"]
    assert [Path(d.path).name for d in refused] == [big.name]
    assert "over digest.max_dump_bytes" in refused[0].error
    assert big.name in refused[0].error
    assert {d.status for d in report.dumps if d not in refused} == {"ingested"}
    # not recorded, so a raised limit lets the same file in
    app = make_app(replace(settings, digest=replace(settings.digest, max_dump_bytes=10**9)))
    assert [d.status for d in ingesting.ingest(app).dumps if Path(d.path) == big] == ["ingested"]
    with app.session() as s:
        assert s.scalar(select(func.count()).select_from(DumpFile)) == len(small) + 1


class CountingRenderer(Renderer):
    """The real renderer, noting how many papers each inlined (premailer) e-mail held."""

    def __init__(self) -> None:
        super().__init__()
        self.inlined: list[int] = []

    def email_html(
        self, view: DigestView, *, unsubscribe_url: str | None = None, inline: bool = True
    ) -> str:
        if inline:
            self.inlined.append(sum(len(s.papers) for s in view.sections))
        return super().email_html(view, unsubscribe_url=unsubscribe_url, inline=inline)


def test_the_email_inlines_only_what_it_shows_and_the_feed_stays_bounded(
    tmp_path: Path,
) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    many = [(p.title, p.abstract) for p in generate(1500, seed=3)]
    write_dump(dumps / "big.txt", many)
    settings = settings_with(tmp_path, dumps)
    renderer = CountingRenderer()
    app = make_app(settings, renderer=renderer)
    report = publishing.send(app)
    assert report.prepared is not None and report.prepared.view.paper_count == 1500
    box = mailbox.Maildir(str(settings.outbox_dir), create=False)
    messages = list(box)
    assert len(messages) == 2  # ada and grace
    parsed = message_from_bytes(messages[0].as_bytes(), policy=policy.default)
    html = next(
        part.get_content() for part in parsed.walk() if part.get_content_type() == "text/html"
    )
    shown = html.count("1.html#p-")
    assert 0 < shown < 1500
    assert len(html.encode()) <= settings.email.max_html_bytes * 1.1
    # premailer never saw the whole digest: only views about the size of what is shown
    assert max(renderer.inlined) < 1500 // 2, renderer.inlined
    feed = feedparser.parse(str(settings.public_dir / "feed.xml"))
    assert feed.bozo == 0
    content = feed.entries[0].content[0].value
    # past FEED_ENTRY_BYTES the entry lists titles only: bounded by the issue's cap,
    # a few hundred bytes a paper, not the e-mail's inlined 1.6 KB a paper
    assert len(content.encode()) <= FEED_ENTRY_BYTES + 250 * 1500
    archive = (settings.public_dir / "archive" / "1.html").read_text()
    assert many[-1][0].split(":")[0] in archive  # the web copy has every paper


def test_a_file_larger_than_its_size_said_is_read_only_up_to_the_limit(
    tmp_path: Path, dumps_dir: Path
) -> None:
    """The size is checked on stat, but a file can grow before it is read. A /proc file
    is the real case at its starkest: stat says 0 bytes, reading gives kilobytes. Only
    the limit (and one byte more) is read; the file is refused, and not recorded."""
    grown = Path("/proc/self/smaps")  # stat: 0 bytes; read: ~30 kB
    assert grown.stat().st_size == 0 and len(grown.read_bytes()) > 1000
    app = make_app(settings_with(tmp_path, dumps_dir, max_dump_bytes=500))
    report = ingesting.ingest(app, [grown])
    assert [d.status for d in report.dumps] == ["failed"]
    assert "over digest.max_dump_bytes = 500" in report.dumps[0].error
    with app.session() as s:
        assert s.scalar(select(func.count()).select_from(DumpFile)) == 0
