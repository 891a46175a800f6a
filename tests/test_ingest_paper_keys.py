"""Paper keys in the state: one paper per key across dumps, a different abstract under a
stored key is a named warning, and migration 0004 recomputes the keys of an existing state
(merging papers that now share a key without losing a sighting or a published item)."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text

from digest.app import ingesting, make_app
from digest.config import DigestSection, Settings
from digest.ingest.keys import paper_key
from digest.state import db
from digest.state.models import Digest, DigestItem, DumpFile, Paper, Sighting

ABSTRACT = "We compile deep learning models to fast code for many chips and measure it. " * 2
OTHER = "An entirely different study of music generation with diffusion models, at scale. " * 2


def dump(path: Path, papers: list[tuple[str, str]]) -> None:
    body = "\n\n".join(f"{t}\n\n{a}" for t, a in papers)
    path.write_text(f"Daily Papers\n\nApr 2\n\n{body}\n", encoding="utf-8")
    settled = time.time() - 3600  # `send` leaves a file modified in the last seconds alone
    os.utime(path, (settled, settled))


def settings_for(tmp_path: Path, database_url: str) -> Settings:
    (tmp_path / "dumps").mkdir(exist_ok=True)
    return Settings(
        digest=DigestSection(
            dumps_dir=str(tmp_path / "dumps"),
            state_dir=str(tmp_path / "state"),
            database_url=database_url,
        ),
        base_dir=tmp_path,
        source="test",
    )


def test_c_and_c_sharp_across_dumps_are_two_papers_and_a_zero_width_space_is_none(
    tmp_path: Path, database_url: str
) -> None:
    app = make_app(settings_for(tmp_path, database_url))
    dump(tmp_path / "dumps" / "a.txt", [("C Compilers for Deep Learning", ABSTRACT)])
    dump(
        tmp_path / "dumps" / "b.txt",
        [
            ("C# Compilers for Deep Learning", ABSTRACT),
            ("C\u200b Compilers for Deep Learning", ABSTRACT),
        ],
    )
    ingesting.ingest(app)
    with app.session() as s:
        titles = sorted(s.scalars(select(Paper.title)))
    assert titles == ["C Compilers for Deep Learning", "C# Compilers for Deep Learning"]


def test_another_abstract_under_a_stored_key_is_a_warning_naming_both(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(settings_for(tmp_path, database_url))
    dump(tmp_path / "dumps" / "a.txt", [("Mixture-of-Experts: A Survey", ABSTRACT)])
    ingesting.ingest(app)
    dump(tmp_path / "dumps" / "b.txt", [("Mixture of Experts — a survey", OTHER)])
    with caplog.at_level(logging.WARNING, logger="digest"):
        ingesting.ingest(app)
    line = (
        f"{tmp_path / 'dumps' / 'b.txt'}:5: 'Mixture of Experts — a survey' has the key of the "
        "stored paper 'Mixture-of-Experts: A Survey' but another abstract; kept the stored one"
    )
    assert line in caplog.messages
    with app.session() as s:
        assert s.scalars(select(Paper.abstract)).all() == [ABSTRACT.strip()]
        stored = s.scalars(select(DumpFile.warnings).where(DumpFile.path.like("%b.txt"))).one()
    assert stored == [line]
    # the same abstract again (spacing aside) is the same paper, silently
    caplog.clear()
    dump(tmp_path / "dumps" / "c.txt", [("MIXTURE OF EXPERTS: A SURVEY", "  " + ABSTRACT.upper())])
    ingesting.ingest(app)
    assert not [m for m in caplog.messages if "another abstract" in m]


def test_migration_0004_recomputes_keys_and_merges_safely(
    tmp_path: Path, database_url: str
) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    when = datetime(2026, 4, 2, tzinfo=UTC)
    # keys as the old fold made them ("#" folded away, "♯" kept)
    old = [
        (1, "c tools for kernels", "C# Tools for Kernels", None),
        (2, "sharp♯ notes", "Sharp\u266f Notes", None),  # merged: 3 is the same paper
        (3, "sharp notes", "Sharp# Notes", None),
        (4, "e♯ minor", "E\u266f Minor", 1),  # both published: both kept
        (5, "e minor", "E# Minor", 1),
        (6, "g♯ tunes", "G\u266f Tunes", None),  # merged: 7's published item moves to 6
        (7, "g tunes", "G# Tunes", 1),
        (8, "plain title", "Plain Title", None),
    ]
    sessions = db.make_sessionmaker(engine)
    with sessions() as s:
        s.add_all(
            [
                DumpFile(id=d, path=f"{d}.txt", content_hash=f"{d:064x}", size=1, status="ingested")
                for d in (1, 2)
            ]
        )
        s.add(
            Digest(
                id=1,
                issue=1,
                subject="s",
                html="h",
                web_html="w",
                paper_count=3,
                published_at=when,
            )
        )
        s.add_all(Paper(id=i, key=k, title=t, abstract=ABSTRACT) for i, k, t, _ in old)
        s.flush()
        s.add_all(Sighting(paper_id=i, dump_id=1, position=i) for i, *_ in old)
        s.add_all(
            [
                Sighting(paper_id=3, dump_id=2, position=0),
                Sighting(paper_id=7, dump_id=2, position=1),
            ]
        )
        s.add_all(
            DigestItem(digest_id=d, paper_id=i, section="S", section_slug="s", position=i)
            for i, _, _, d in old
            if d
        )
        s.commit()
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    command.upgrade(db.alembic_config(engine), "0004")  # this migration alone, run again
    with sessions() as s:
        keys = {i: k for i, k in s.execute(select(Paper.id, Paper.key))}
        seen = sorted((p, d) for p, d in s.execute(select(Sighting.paper_id, Sighting.dump_id)))
        items = sorted(s.scalars(select(DigestItem.paper_id)))
    assert keys == {
        1: "c# tools for kernels",
        2: "sharp# notes",
        4: "e# minor",
        5: "e# minor\x1f5",
        6: "g# tunes",
        8: "plain title",
    }
    assert all(paper_key(t) == keys[i] for i, _, t, _ in old if i in (1, 2, 4, 6, 8))
    assert seen == [(1, 1), (2, 1), (2, 2), (4, 1), (5, 1), (6, 1), (6, 2), (8, 1)]
    assert items == [4, 5, 6]  # every published paper is still published, once
    engine.dispose()


def test_parsed_papers_carry_the_key_they_are_stored_under() -> None:
    from tests.support.dumps import SAMPLE_FILES, parse_dump

    papers = [p for f in SAMPLE_FILES for p in parse_dump(str(f)).papers]
    assert len(papers) > 100
    assert all(p.key and p.key == paper_key(p.title) for p in papers)
