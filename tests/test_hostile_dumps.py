"""Hostile dumps: dump text and dump files made to harm a reader or the machine — a
subscriber's token placeholder in an abstract, bidi controls, symbolic links in the
dumps folder, files that are not listings, a file still being written or grown."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from email.utils import parseaddr
from pathlib import Path

import feedparser
import pytest
from sqlalchemy import select

from digest.app import ingesting, make_app, publishing, subscribing
from digest.mail.message import PLACEHOLDER
from digest.state.models import DumpFile, Paper
from tests.support.dumps import SAMPLE_FILES, parse_dump
from tests.support.hostile import (
    ABSTRACT,
    BIDI,
    HEADER,
    OTHER,
    bodies,
    cli,
    dump_text,
    hostile_settings,
    outbox_raw,
    parsed,
    project,
    settings_of,
    tokens,
    write_dump,
)


def test_a_placeholder_in_a_dump_never_receives_a_token(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path)
    stolen = f"Read it at https://evil.example/steal?t={PLACEHOLDER} today. " + ABSTRACT
    write_dump(
        settings.dumps_dir / "d.txt",
        dump_text([("Stealing Tokens From Readers", stolen), ("An Honest Paper", OTHER)]),
    )
    app = make_app(settings)
    book = subscribing.book(app)
    book.add("eve@example.org")
    book.add("bob@example.org", name="Bob")
    assert publishing.send(app).delivery.sent == 2
    owned = tokens(app)
    base = f"{settings.base_url}/unsubscribe/"
    messages = [parsed(raw) for raw in outbox_raw(settings)]
    assert sorted(parseaddr(str(m["To"]))[1] for m in messages) == sorted(owned)
    for msg in messages:
        token = owned[parseaddr(str(msg["To"]))[1]]
        for body in bodies(msg):
            assert "https://evil.example/steal?t=" in body  # the dump's text is shown...
            assert f"steal?t={token}" not in body  # ...but never with a token in it
            starts = [m.start() for m in re.finditer(re.escape(token), body)]
            assert starts, "the template's own unsubscribe link carries the token"
            slots = (base, f"{settings.base_url}/preferences/", f"{settings.base_url}/feedback/")
            assert all(body[:i].endswith(slots) for i in starts)
            for other in set(owned.values()) - {token}:
                assert other not in body


def test_bidi_controls_are_stripped_from_every_output(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path)
    title = "Safe \u202eTitle\u202c With \u2066Isolates\u2069 and \u200fMarks\u061c"
    abstract = f"{ABSTRACT} Evil \u202egnp.exe\u202c here {BIDI}."
    write_dump(settings.dumps_dir / "d.txt", dump_text([(title, abstract), ("Plain", OTHER)]))
    app = make_app(settings)
    subscribing.book(app).add("ada@example.org")
    assert publishing.send(app).delivery.sent == 1
    outputs: dict[str, str] = {}
    msg = parsed(outbox_raw(settings)[0])
    outputs["e-mail html"], outputs["e-mail text"] = bodies(msg)
    outputs["subject"] = str(msg["Subject"])
    public = settings.public_dir
    for f in public.rglob("*"):
        if f.is_file() and f.suffix in (".html", ".xml", ".json"):
            outputs[str(f.relative_to(public))] = f.read_text("utf-8")
    assert "feed.xml" in outputs and "archive/1.html" in outputs and "feed.json" in outputs
    for where, text in outputs.items():
        assert not set(text) & set(BIDI), where
    assert "Safe Title With Isolates and Marks" in outputs["e-mail text"]
    assert "Safe Title With Isolates and Marks" in outputs["archive/1.html"]
    assert "Safe Title With Isolates and Marks" in outputs["feed.json"]
    assert len(feedparser.parse(outputs["feed.xml"]).entries) == 1


def test_symlinks_in_the_dumps_folder_are_reported_and_skipped(tmp_path: Path) -> None:
    config = project(tmp_path)
    secret = write_dump(tmp_path / "secret.txt", dump_text([("Root Only Secret Paper", ABSTRACT)]))
    dumps = tmp_path / "dumps"
    write_dump(dumps / "real.txt", dump_text([("A Real Paper", OTHER)]))
    (dumps / "link.txt").symlink_to(secret)
    (dumps / "dirlink").symlink_to(tmp_path)
    (dumps / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    code, output = cli("-c", str(config), "send")
    assert code == 0, output
    assert "published issue #1" in output
    for name in ("link.txt", "dangling.txt"):
        lines = [line for line in output.splitlines() if f"'{name}'" in line]
        assert len(lines) == 1 and "symbolic link" in lines[0], output
    settings_app = make_app(settings_of(config))
    with settings_app.session() as s:
        titles = set(s.scalars(select(Paper.title)))
        paths = set(s.scalars(select(DumpFile.path)))
    assert titles == {"A Real Paper"}
    assert paths == {str(dumps / "real.txt")}
    public = tmp_path / "state" / "public"
    for f in public.rglob("*"):
        if f.is_file():
            assert b"Root Only Secret" not in f.read_bytes(), f


def test_the_daemon_watcher_skips_links_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from digest.daemon.scheduler import Watcher

    secret = write_dump(tmp_path / "secret.txt", dump_text([("Secret", ABSTRACT)]))
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    write_dump(dumps / "real.txt", dump_text([("Real", ABSTRACT)]))
    (dumps / "link.txt").symlink_to(secret)
    ticks = iter(range(0, 100, 10))
    watcher = Watcher(dumps, 1.0, clock=lambda: float(next(ticks)))
    with caplog.at_level(logging.WARNING):
        assert watcher.ready() == []
        assert watcher.ready() == [dumps / "real.txt"]
        watcher.ready()
    warned = [r.getMessage() for r in caplog.records if "'link.txt'" in r.getMessage()]
    assert len(warned) == 1 and "symbolic link" in warned[0]


def test_a_file_swapped_for_a_link_after_the_scan_is_not_followed(tmp_path: Path) -> None:
    from digest.ingest.files import ingest_one
    from digest.state.papers import DumpLedger

    settings = hostile_settings(tmp_path)
    secret = write_dump(tmp_path / "secret.txt", dump_text([("Secret", ABSTRACT)]))
    (settings.dumps_dir / "x.txt").symlink_to(secret)
    app = make_app(settings)
    with app.session() as s:
        report = ingest_one(DumpLedger(s), settings.dumps_dir / "x.txt")
    assert report.status == "failed" and "symbolic link" in report.error


SAMPLE = SAMPLE_FILES[1]  # 74 papers


def ingest_one_file(tmp_path: Path, path: Path) -> tuple[str, str]:
    from digest.ingest.files import ingest_one
    from digest.state.papers import DumpLedger

    app = make_app(hostile_settings(tmp_path))
    with app.session() as s:
        report = ingest_one(DumpLedger(s), path)
        s.commit()
    return report.status, report.error


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hello world, this is not a dump\n", "no listing date"),
        ("Title one\n\n" + ABSTRACT + "\n", "no listing date"),
        (HEADER + "Title one\n\nshort words.\n\nTitle two\n\nalso short.\n", "too short"),
        (HEADER + "Title one\n\nTitle two\n\nTitle three\n\nTitle four\n", "no abstract"),
    ],
)
def test_a_file_without_the_shape_of_a_listing_fails_with_its_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = write_dump(tmp_path / "junk.txt", text)
    status, error = ingest_one_file(tmp_path, path)
    assert status == "failed"
    assert reason in error and "junk.txt" in error


def test_a_dump_cut_mid_abstract_keeps_only_whole_papers(tmp_path: Path) -> None:
    from digest.ingest.parse import parse_bytes

    full = dump_text([("One", ABSTRACT), ("Two", OTHER), ("Three", ABSTRACT)])
    cut = full[: full.rindex(ABSTRACT) + 60]  # mid-sentence
    listing = parse_bytes(cut.encode(), name="d.txt", mtime=_now())
    assert [p.title for p in listing.papers] == ["One", "Two"]
    skipped = [w for w in listing.warnings if "still being written" in w]
    assert any("'Three'" in w for w in skipped), listing.warnings
    titled = full[: full.rindex(ABSTRACT)]  # the last title without its abstract yet
    listing = parse_bytes(titled.encode(), name="d.txt", mtime=_now())
    assert [p.title for p in listing.papers] == ["One", "Two"]


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime(2026, 5, 1, tzinfo=UTC)


def test_send_reads_a_file_still_being_written_once_complete(tmp_path: Path) -> None:
    """A one-off send waits out settle_seconds for a file modified a moment ago; the
    writer finishing it meanwhile restarts the wait, and the whole file is published."""
    settings = hostile_settings(tmp_path)
    settings = replace(settings, schedule=replace(settings.schedule, settle_seconds=1.0))
    full = SAMPLE.read_bytes()
    fresh = write_dump(settings.dumps_dir / "fresh.txt", full[: full.index(b"\n\n", 2000)], age=0)
    notices: list[str] = []

    def writer_finishes(text: str) -> None:  # called as the send starts to wait
        notices.append(text)
        with fresh.open("ab") as handle:
            handle.write(full[full.index(b"\n\n", 2000) :])

    report = publishing.send(make_app(settings), notice=writer_finishes)
    assert len(notices) == 1 and "'fresh.txt' was modified" in notices[0], notices
    assert report.issue == 1, report.reason
    assert report.ingest.new_papers == len(parse_dump(str(SAMPLE)).papers)


def test_a_grown_dump_is_the_same_dump(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path)
    data = SAMPLE.read_bytes()
    path = settings.dumps_dir / "growing.txt"
    write_dump(path, data[: len(data) // 2])
    app = make_app(settings)
    first = ingesting.ingest(app)
    assert [d.status for d in first.dumps] == ["ingested"]
    part = first.dumps[0].papers
    assert 20 < part < 74
    write_dump(path, data)
    second = ingesting.ingest(app)
    assert [d.status for d in second.dumps] == ["ingested"]
    assert second.dumps[0].new_papers == 74 - part
    with app.session() as s:
        assert len(s.scalars(select(DumpFile)).all()) == 1
        assert len(s.scalars(select(Paper)).all()) == 74
        dump = s.scalars(select(DumpFile)).one()
        assert dump.paper_count == 74 and dump.size == len(data)
    assert ingesting.ingest(app).dumps[0].status == "known"
