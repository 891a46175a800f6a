"""Each issue's web copy is stored as the gzip of the page written (a fifth of its size:
26 MB of HTML at 10,000 papers), and what comes back is exactly what was rendered, on
SQLite and PostgreSQL; an issue stored as text before the change keeps its archive page
through the upgrade (and the downgrade gives the text back)."""

from __future__ import annotations

import gzip
import os
import time
from dataclasses import replace
from pathlib import Path

from alembic import command
from sqlalchemy import text

from digest.app import make_app, publishing
from digest.config import Settings
from digest.publish.public import gz_path
from digest.state import db, issues
from digest.urls import issue_path
from tests.support.settings import make_settings

ODD = "Ωmega — “quotes” & <tags> 🙂"  # beyond Latin-1 and beyond the BMP


def test_the_stored_web_copy_is_the_pages_gzip_and_reads_back_exactly(
    settings: Settings,
) -> None:
    dump = Path(settings.digest.dumps_dir) / "odd.txt"
    abstract = f"We study {ODD} and show that it is stored, compressed and read back."
    dump.write_text(f"new\n\nMar 14\n\nA paper on {ODD}\n\n{abstract * 2}\n")
    long_ago = time.time() - 3600
    os.utime(dump, (long_ago, long_ago))
    app = make_app(settings)
    report = publishing.publish(app, settle_wait=False)
    assert report.issue is not None
    path = settings.public_dir / issue_path(report.issue)
    page, page_gz = path.read_bytes(), gz_path(path).read_bytes()
    assert "Ωmega — “quotes” &amp; &lt;tags&gt; 🙂".encode() in page
    assert gzip.decompress(page_gz) == page

    with app.session() as session:
        stored_gz, stored_text = session.execute(
            text("SELECT web_gz, web_html FROM digests WHERE issue = :n"), {"n": report.issue}
        ).one()
        assert bytes(stored_gz) == page_gz  # one compression serves the file and the row
        assert stored_text == ""  # not stored twice
        assert issues.web_copy(session, report.issue) == page

    # the page lost: the next run writes it again from the row, byte for byte
    path.unlink()
    gz_path(path).unlink()
    publishing.publish_files(app)
    assert path.read_bytes() == page
    assert gz_path(path).read_bytes() == page_gz


def test_the_upgrade_keeps_an_old_issues_archive_page(tmp_path: Path, database_url: str) -> None:
    engine = db.make_engine(database_url)
    cfg = db.alembic_config(engine)
    command.upgrade(cfg, "0020")
    web = f"<!DOCTYPE html>\n<p>{ODD}</p>\n" * 2000  # stored as text, as before 0021
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO digests (id, issue, subject, html, web_html, feed_html,"
                " paper_count, themes, status, published_at) VALUES (1, 1, 's', '<p>m</p>',"
                " :w, '<p>feed</p>', 1, '[]', 'published', '2026-01-01 08:00:00')"
            ),
            {"w": web},
        )
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        packed, left = conn.execute(text("SELECT web_gz, web_html FROM digests")).one()
    assert gzip.decompress(bytes(packed)).decode("utf-8") == web and left == ""

    dumps = tmp_path / "dumps"
    dumps.mkdir()
    settings = make_settings(tmp_path, dumps)
    app = make_app(replace(settings, digest=replace(settings.digest, database_url=database_url)))
    publishing.publish_files(app)
    page = settings.public_dir / issue_path(1)
    assert page.read_bytes() == web.encode("utf-8")
    assert gzip.decompress(gz_path(page).read_bytes()) == web.encode("utf-8")
    app.database.engine.dispose()

    command.downgrade(cfg, "0020")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT web_html FROM digests")).scalar_one() == web
    engine.dispose()
