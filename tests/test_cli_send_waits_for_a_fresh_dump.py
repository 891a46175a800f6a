"""A one-off `digest send` right after a dump is copied into the folder: the person
said "now", so it waits out schedule.settle_seconds for the file and publishes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import feedparser
import pytest
from click.testing import CliRunner

from digest.program import main
from tests.support.dumps import SAMPLE_FILES, write_dump

FILLER = " We describe the method, the data and the experiments, and release the code."
NEW_PAPERS = [
    ("Sparse Routers for Tiny Mixture of Experts", "We route tokens to two experts." + FILLER),
    ("Counting Sheep with Diffusion Models", "A diffusion model counts sheep." + FILLER),
    ("Benchmarks That Age Well", "We study how benchmarks saturate over time." + FILLER),
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Laid out as the README says: digest.toml and dumps/ holding the bundled samples
    (settled: copied with their old mtimes)."""
    (tmp_path / "dumps").mkdir()
    for f in SAMPLE_FILES:
        shutil.copy2(f, tmp_path / "dumps" / f.name)
    (tmp_path / "digest.toml").write_text(
        '[email]\nrecipients = ["ada@example.org"]\n\n[schedule]\nsettle_seconds = 1.5\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    return tmp_path


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def copy_new_dump(project: Path) -> Path:
    """`cp new.txt dumps/` of a changed sample dump (the first sample with three papers
    added): the copy's mtime is now, as a shell cp leaves it."""
    added = write_dump(project / "added.txt", NEW_PAPERS).read_text("utf-8")
    papers = added[added.index(NEW_PAPERS[0][0]) :]
    made = project / "new.txt"
    made.write_text(SAMPLE_FILES[0].read_text("utf-8").rstrip("\n") + "\n\n" + papers, "utf-8")
    return Path(shutil.copy(made, project / "dumps" / "new.txt"))


def feed_titles(project: Path) -> str:
    feed = feedparser.parse((project / "state" / "public" / "feed.xml").read_bytes())
    return " ".join(entry.content[0].value for entry in feed.entries)


def test_a_dump_copied_just_before_send_is_published_by_that_send(project: Path) -> None:
    first = run("send")
    assert first.exit_code == 0 and "published issue #1" in first.output
    copy_new_dump(project)
    second = run("send")
    assert second.exit_code == 0, second.output
    assert "'new.txt' was modified" in second.output
    assert "schedule.settle_seconds = 1.5 s" in second.output
    assert "ingested dumps/new.txt: 64 papers, 3 new" in second.output
    assert "published issue #2" in second.output
    assert "no new dump" not in second.output
    assert all(title in feed_titles(project) for title, _ in NEW_PAPERS)


def test_a_dry_run_reads_the_dump_just_copied_and_stores_nothing(project: Path) -> None:
    assert run("send").exit_code == 0
    copy_new_dump(project)
    dry = run("send", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "'new.txt' was modified" in dry.output
    assert "would ingest dumps/new.txt: 64 papers, 3 new" in dry.output
    assert "would publish issue #2" in dry.output
    status = run("status")
    assert "papers:" in status.output and " 0 pending" in status.output


def test_ingest_reads_the_dump_just_copied(project: Path) -> None:
    copy_new_dump(project)
    result = run("ingest")
    assert result.exit_code == 0, result.output
    assert "'new.txt' was modified" in result.output
    assert "ingested dumps/new.txt: 64 papers, 3 new" in result.output


def test_preview_reads_the_dump_just_copied(project: Path) -> None:
    assert run("send").exit_code == 0
    copy_new_dump(project)
    result = run("preview", "--out", "p.html")
    assert result.exit_code == 0, result.output
    assert "#2" in result.output
    assert NEW_PAPERS[1][0] in (project / "p.html").read_text()
