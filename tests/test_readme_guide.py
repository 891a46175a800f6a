"""The README as a newcomer's guide: it shows how to make a dump with a sample that
`digest` reads as it says, and `digest init` describes sections as they are cut."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from digest.ingest.parse import parse_bytes
from digest.program import main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_shows_a_dump_that_reads_as_it_says() -> None:
    text = README.read_text()
    guide = text.split("### Making a dump", 1)[1].split("\n### ", 1)[0]
    assert "save it" in guide and "dumps" in guide
    sample = guide.split("```text\n", 1)[1].split("```", 1)[0]
    listing = parse_bytes(
        sample.encode(), name="sample.txt", mtime=datetime(2025, 5, 1, tzinfo=UTC)
    )
    assert str(listing.listing_date) == "2025-03-14"
    assert [p.title for p in listing.papers] == [
        "Compositional Video Generation as Flow Equalization",
        "Mixture of Experts Made Intrinsically Interpretable",
    ]
    assert listing.warnings == []
    assert "about 2 minutes" not in text


def test_init_describes_where_papers_go_as_they_do(tmp_path: Path) -> None:
    target = tmp_path / "digest.toml"
    assert CliRunner().invoke(main, ["init", str(target)]).exit_code == 0
    written = target.read_text()
    assert "remaining section" not in written
    assert "research areas they match (`digest areas`)" in written
    assert '"More papers"' in written
