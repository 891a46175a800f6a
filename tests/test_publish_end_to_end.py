"""End to end through pipeline.App: real dumps, real database (SQLite and PostgreSQL),
real Maildir outbox; feeds parsed back with feedparser, e-mails parsed back."""

from __future__ import annotations

import mailbox
import os
import time
from dataclasses import replace
from email import message_from_bytes, policy
from pathlib import Path

import feedparser
import pytest
from lxml import html as lxml_html
from sqlalchemy import func, select

from digest.app import delivering, ingesting, inspecting, make_app, publishing
from digest.config import Settings
from digest.ingest.keys import paper_key
from digest.state.models import Delivery, DigestItem, DumpFile, Paper
from tests.support.dumps import SAMPLE_FILES, parse_dump, write_dump


def distinct_keys(files: list[Path]) -> set[str]:
    return {paper_key(p.title) for f in files for p in parse_dump(str(f)).papers}


def outbox_messages(settings: Settings) -> list:
    box = mailbox.Maildir(settings.outbox_dir, create=False)
    return [message_from_bytes(m.as_bytes(), policy=policy.default) for m in box]


def test_three_dumps_make_one_digest_of_every_distinct_paper(settings: Settings) -> None:
    app = make_app(settings)
    report = publishing.send(app)
    expected = distinct_keys(SAMPLE_FILES)
    assert len(expected) == 176  # 195 listings, 19 repeats across the three dumps
    assert report.issue == 1
    with app.session() as s:
        published = set(
            s.scalars(select(Paper.key).join(DigestItem, DigestItem.paper_id == Paper.id))
        )
        assert s.scalar(select(func.count()).select_from(Paper)) == 176
        assert s.scalar(select(func.count()).select_from(DumpFile)) == 3
    assert published == expected
    # the e-mail: one per recipient, multipart/alternative, headers, every title
    messages = outbox_messages(settings)
    assert sorted(m["To"] for m in messages) == ["ada@example.org", "grace@example.org"]
    for m in messages:
        assert m["Message-ID"] and m["Date"] and m["List-Id"] and m["From"]
        assert m.get_content_type() == "multipart/alternative"
        html = m.get_body(("html",)).get_content()
        text = m.get_body(("plain",)).get_content()
        assert m["Subject"].startswith("#1 · 176 papers: ") and len(m["Subject"]) <= 70
        # over the clipping size: the e-mail lists the top papers of every section
        shown = " ".join(lxml_html.fromstring(html).text_content().split())
        for section in report.prepared.view.sections:
            top = section.papers[0].title
            assert " ".join(top.split()) in shown  # the title as the reader sees it
            assert top[:40] in text.replace("\n", " ")
    assert len({m["Message-ID"] for m in messages}) == 2
    # the feeds
    public = settings.public_dir
    for name in ("feed.xml", "atom.xml"):
        parsed = feedparser.parse((public / name).read_bytes())
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        assert len(parsed.entries) == 1
        entry = parsed.entries[0]
        assert entry.title == report.prepared.view.subject
        assert entry.link == "http://localhost:8000/archive/1.html"
        assert entry.published_parsed is not None
        assert "Compositional Video Generation as Flow Equalization" in entry.content[0].value
    assert (public / "feed.json").is_file() and (public / "archive" / "1.html").is_file()


def test_second_send_publishes_nothing_and_says_why(settings: Settings) -> None:
    app = make_app(settings)
    publishing.send(app)
    feed_before = (settings.public_dir / "feed.xml").read_bytes()
    report = publishing.send(app)
    assert report.issue is None
    assert report.reason == f"nothing to publish: no new dump in {settings.dumps_dir}"
    assert len(outbox_messages(settings)) == 2
    assert (settings.public_dir / "feed.xml").read_bytes() == feed_before


def test_new_dump_with_new_and_sent_papers_publishes_exactly_the_new(settings: Settings) -> None:
    app = make_app(settings)
    publishing.send(app)
    old = parse_dump(str(SAMPLE_FILES[0])).papers[:20]
    new = [(f"A brand new paper number {i}", f"Abstract of new paper {i}. " * 5) for i in range(10)]
    write_dump(settings.dumps_dir / "003_mixed.txt", [(p.title, p.abstract) for p in old] + new)
    report = publishing.send(app)
    assert report.issue == 2
    with app.session() as s:
        issue2 = set(
            s.scalars(select(Paper.title).join(DigestItem).where(DigestItem.digest_id == 2))
        )
    assert issue2 == {t for t, _ in new}
    entries = feedparser.parse((settings.public_dir / "feed.xml").read_bytes()).entries
    assert [e.link.rsplit("/", 1)[1] for e in entries] == ["2.html", "1.html"]  # newest first
    assert len(outbox_messages(settings)) == 4


def test_dump_with_only_sent_papers_says_so(settings: Settings) -> None:
    app = make_app(settings)
    publishing.send(app)
    old = parse_dump(str(SAMPLE_FILES[1])).papers[:3]
    write_dump(settings.dumps_dir / "004_old.txt", [(p.title, p.abstract) for p in old])
    report = publishing.send(app)
    assert report.issue is None
    assert report.reason == "nothing to publish: the 1 new dump(s) held no paper not already sent"


def test_corrupt_dump_fails_alone(settings: Settings) -> None:
    (settings.dumps_dir / "000_binary.txt").write_bytes(bytes(range(256)) * 40)
    (settings.dumps_dir / "000_empty.txt").write_bytes(b"")
    for f in settings.dumps_dir.glob("000_*.txt"):
        os.utime(f, (1, time.time() - 3600))  # settled (written an hour ago)
    app = make_app(settings)
    report = publishing.send(app)
    failed = {Path(d.path).name: d.error for d in report.ingest.failed}
    assert set(failed) == {"000_binary.txt", "000_empty.txt"}
    assert "000_empty.txt" in failed["000_empty.txt"] and "empty" in failed["000_empty.txt"]
    assert report.issue == 1 and report.prepared.view.paper_count == 176
    status = inspecting.status(app)
    assert (status.dumps_ingested, status.dumps_failed) == (3, 2)
    # a failed dump is not retried while its content is unchanged...
    assert ingesting.ingest(app).fresh == []
    # ...and is eligible again once fixed
    write_dump(
        settings.dumps_dir / "000_empty.txt",
        [
            (
                "Fixed paper",
                "Now it parses, with an abstract long enough to be one. " * 2,
            )
        ],
    )
    assert [d.status for d in ingesting.ingest(app).fresh] == ["ingested"]


def test_dry_run_changes_nothing(settings: Settings) -> None:
    app = make_app(settings)
    report = publishing.dry_run(app)
    assert report.prepared is not None and report.prepared.view.paper_count == 176
    assert report.recipients == ("ada@example.org", "grace@example.org")
    status = inspecting.status(app)
    assert (status.papers_seen, status.dumps_ingested, status.last_issue) == (0, 0, None)
    assert not settings.public_dir.exists() or not any(settings.public_dir.iterdir())
    assert not settings.outbox_dir.exists()


def test_send_to_one_address_marks_nothing(settings: Settings) -> None:
    app = make_app(settings)
    report = publishing.send_to(app, "editor@example.org")
    assert report.delivery.sent == 1 and report.issue is None
    messages = outbox_messages(settings)
    assert [m["To"] for m in messages] == ["editor@example.org"]
    assert messages[0]["Subject"].startswith("[test] ")
    status = inspecting.status(app)
    assert status.papers_pending == 176 and status.papers_sent == 0 and status.last_issue is None
    assert publishing.send(app).issue == 1  # the real send still publishes everything


def test_min_papers_waits(settings: Settings) -> None:
    s = replace(settings, digest=replace(settings.digest, min_papers=500))
    report = publishing.send(make_app(s))
    assert report.issue is None
    assert report.reason.startswith("nothing to publish: 176 pending paper(s), fewer than")
    assert inspecting.status(make_app(s)).papers_pending == 176


def test_same_dump_twice_is_stored_once(settings: Settings) -> None:
    dup = settings.dumps_dir / "copy_of_000.txt"
    dup.write_bytes(SAMPLE_FILES[0].read_bytes())
    os.utime(dup, (1, SAMPLE_FILES[0].stat().st_mtime))
    app = make_app(settings)
    report = publishing.send(app)
    assert [Path(d.path).name for d in report.ingest.dumps if d.status == "known"] == [
        "copy_of_000.txt"
    ]
    assert inspecting.status(app).papers_seen == 176


def test_crash_after_publish_resumes_deliveries_and_files(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deliveries are rows created with the digest: if the process dies before sending,
    the next run sends them and rewrites any missing public file."""
    app = make_app(settings)

    def killed(*_: object, **__: object) -> None:
        raise RuntimeError("process killed")

    with monkeypatch.context() as patched, pytest.raises(RuntimeError):
        patched.setattr(delivering, "deliver_pending", killed)
        publishing.send(app)  # dies after the digest was stored, before any delivery
    (settings.public_dir / "feed.xml").unlink()
    again = make_app(settings)
    report = publishing.send(again)
    assert report.issue is None and report.delivery.sent == 2
    assert (settings.public_dir / "feed.xml").is_file()
    with again.session() as s:
        assert set(s.scalars(select(Delivery.status))) == {"sent"}
    assert len(outbox_messages(settings)) == 2


def test_hostile_dump_text_is_escaped_everywhere(settings: Settings, tmp_path: Path) -> None:
    for f in settings.dumps_dir.iterdir():
        f.unlink()
    evil = '<script>alert("x")</script> & <b>bold</b> Attention'
    write_dump(
        settings.dumps_dir / "evil.txt",
        [
            (
                evil,
                "An abstract with <img src=x onerror=alert(1)> & a link https://github.com/a/b, "
                "long enough to be an abstract.",
            )
        ],
    )
    app = make_app(settings)
    report = publishing.send(app)
    public = settings.public_dir
    pages = {
        "e-mail": outbox_messages(settings)[0].get_body(("html",)).get_content(),
        "web copy": (public / "archive" / "1.html").read_text(),
        "index": (public / "index.html").read_text(),
    }
    for where, html in pages.items():
        assert "<script>" not in html and "<img src=x" not in html, where
        if where != "index":  # the index lists subjects, not paper titles
            assert "&lt;script&gt;" in html and "&lt;img src=x" in html, where
    for name in ("feed.xml", "atom.xml"):
        entry = feedparser.parse((public / name).read_bytes()).entries[0]
        content = entry.content[0].value
        assert "<script>" not in content and "&lt;script&gt;" in content, name
        # the entry's title is the subject, which names sections, never a paper title
        assert entry.title == report.prepared.view.subject and "<script>" not in entry.title
    text = outbox_messages(settings)[0].get_body(("plain",)).get_content()
    assert evil in text.replace("\n", " ")  # the text part shows it as it is


def test_feeds_keep_the_last_n_issues(settings: Settings) -> None:
    import json

    s = replace(settings, digest=replace(settings.digest, feed_size=2))
    app = make_app(s)
    publishing.send(app)  # issue 1: the samples
    for i in range(3):
        write_dump(s.dumps_dir / f"10{i}.txt", [(f"Fresh paper {i}", "Abstract. " * 12)])
        publishing.send(app)
    rss = feedparser.parse((s.public_dir / "feed.xml").read_bytes())
    atom = feedparser.parse((s.public_dir / "atom.xml").read_bytes())
    feed_json = json.loads((s.public_dir / "feed.json").read_text())
    for entries in (rss.entries, atom.entries):
        assert [e.id for e in entries] == [
            "http://localhost:8000/archive/4.html",
            "http://localhost:8000/archive/3.html",
        ]
        assert all(e.published_parsed for e in entries)
    assert feed_json["version"] == "https://jsonfeed.org/version/1.1"
    assert [i["id"] for i in feed_json["items"]] == [e.id for e in rss.entries]
    assert all(i["date_published"].endswith("+00:00") for i in feed_json["items"])
    assert sorted(p.name for p in (s.public_dir / "archive").glob("*.html")) == [
        "1.html",
        "2.html",
        "3.html",
        "4.html",
    ]
