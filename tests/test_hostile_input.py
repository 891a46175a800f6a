"""Input from outside (dumps, file names, subscriber names and addresses, CSV files, SMTP
servers) tried as an attacker or an unlucky operator would. Each section below names the
input; each test names what the user sees."""

from __future__ import annotations

import io
import logging
import mailbox
import os
import re
import time
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from digest.app import App, make_app
from digest.config import Settings
from digest.ingest.files import parse_dump
from digest.mail.message import PLACEHOLDER
from digest.program import main
from digest.state.models import DumpFile, Paper, Subscriber
from tests.support.dumps import SAMPLE_FILES
from tests.support.net import free_port
from tests.support.settings import make_settings
from tests.support.smtp import running_smtp

HEADER = "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nMar 14\n\n"
ABSTRACT = (
    "We study a careful question about learning systems and report what we found across "
    "several public benchmarks, with the code and the data released for others to check."
)
OTHER = (
    "Large models forget what they learned before when they are tuned again; we measure "
    "how much they forget and propose a cheap way to keep most of it across many tasks."
)
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def dump_text(papers: list[tuple[str, str]], header: str = HEADER) -> str:
    return header + "\n\n".join(f"{t}\n\n{a}" for t, a in papers) + "\n"


def write_dump(path: Path, text: str | bytes, age: float = 3600.0) -> Path:
    """A dump file last modified ``age`` seconds ago (settled, unless age is small)."""
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def hostile_settings(tmp_path: Path, **email: object) -> Settings:
    dumps = tmp_path / "dumps"
    dumps.mkdir(exist_ok=True)
    s = make_settings(tmp_path, dumps)
    return replace(s, email=replace(s.email, recipients=[], **email))  # type: ignore[arg-type]


def tokens(app: App) -> dict[str, str]:
    with app.session() as s:
        return {a: t for a, t in s.execute(select(Subscriber.address, Subscriber.token))}


def outbox_raw(settings: Settings) -> list[bytes]:
    return [m.as_bytes() for m in mailbox.Maildir(settings.outbox_dir, create=False)]


def parsed(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def bodies(msg: EmailMessage) -> tuple[str, str]:
    html, text = msg.get_body(("html",)), msg.get_body(("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content()


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def project(tmp_path: Path, extra: str = "") -> Path:
    """A digest.toml with a dumps folder and a state folder; returns the config path."""
    (tmp_path / "dumps").mkdir(exist_ok=True)
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[digest]\ndumps_dir = "{tmp_path / "dumps"}"\nstate_dir = "{tmp_path / "state"}"\n'
        + extra
    )
    return config


# --- a dump cannot reach a subscriber's token ------------------------------------------


def test_a_placeholder_in_a_dump_never_receives_a_token(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path)
    stolen = f"Read it at https://evil.example/steal?t={PLACEHOLDER} today. " + ABSTRACT
    write_dump(
        settings.dumps_dir / "d.txt",
        dump_text([("Stealing Tokens From Readers", stolen), ("An Honest Paper", OTHER)]),
    )
    app = make_app(settings)
    book = app.subscribers()
    book.add("eve@example.org")
    book.add("bob@example.org", name="Bob")
    assert app.send().delivery.sent == 2
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
            slots = (base, f"{settings.base_url}/preferences/")  # the template's own links
            assert all(body[:i].endswith(slots) for i in starts)
            for other in set(owned.values()) - {token}:
                assert other not in body


# --- names never reach a header unencoded ----------------------------------------------

INJECTED = "Evil\r\nBcc: injected@evil.example"


@pytest.mark.parametrize("name", [INJECTED, "Evil\nBcc: x@evil.example", "Evil\x00One", "A\x1bB"])
def test_cli_refuses_a_name_with_line_breaks_or_control_characters(
    tmp_path: Path, name: str
) -> None:
    config = project(tmp_path)
    code, output = cli("-c", str(config), "subscribers", "add", "evil@example.net", "--name", name)
    assert code == 1
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "name" in lines[0] and "control" in lines[0], output
    code, output = cli("-c", str(config), "subscribers", "list")
    assert "evil@example.net" not in output


def test_a_csv_row_with_an_injected_name_is_rejected(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path)
    book = make_app(settings).subscribers()
    text = 'email,name\nok@example.org,Ok\nevil@example.net,"Evil\r\nBcc: x@evil.example"\n'
    report = book.import_csv(io.StringIO(text, newline=""))
    assert report.added == 1
    assert len(report.errors) == 1
    line, problem = report.errors[0]
    assert line == 4 and "name" in problem
    assert [s.address for s in book.list()] == ["ok@example.org"]


def test_a_stored_name_cannot_inject_a_header_over_smtp(tmp_path: Path, smtp_server) -> None:
    controller, recorder = smtp_server
    settings = hostile_settings(
        tmp_path, transport="smtp", smtp_host="127.0.0.1", smtp_port=controller.port
    )
    write_dump(settings.dumps_dir / "d.txt", dump_text([("A Paper", ABSTRACT)]))
    app = make_app(settings)
    book = app.subscribers()
    book.add("evil@example.net", name="Evil")
    book.add("zoe@example.org", name="Zoë Ångström, PhD")
    with app.session() as s:  # a row written before names were checked
        s.execute(
            update(Subscriber).where(Subscriber.address == "evil@example.net").values(name=INJECTED)
        )
        s.commit()
    assert app.send().delivery.sent == 2
    got = {tuple(rcpts): msg for rcpts, msg in recorder.messages}
    assert set(got) == {("evil@example.net",), ("zoe@example.org",)}
    for (rcpt,), msg in got.items():
        assert msg["Bcc"] is None and msg["Cc"] is None
        assert [a for _, a in getaddresses([str(msg["To"])])] == [rcpt]
        assert set(msg.keys()) == {
            "To", "Message-ID", "List-Unsubscribe", "Subject", "From", "Date", "List-Id",
            "List-Unsubscribe-Post", "MIME-Version", "Content-Type",
        }  # fmt: skip
    assert msg_name(got[("zoe@example.org",)]) == "Zoë Ångström, PhD"
    assert msg_name(got[("evil@example.net",)]) == "Evil Bcc: injected@evil.example"


def msg_name(msg: EmailMessage) -> str:
    return str(msg["To"].addresses[0].display_name)


# --- only regular files inside the dumps folder ----------------------------------------


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
    settings_app = make_app(_settings_of(config))
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


def _settings_of(config: Path) -> Settings:
    from digest.config import load_settings

    return load_settings(str(config))


# --- file names and dump text cannot forge a log or output line -----------------------

FORGED = "2026-01-01 00:00:00 INFO published issue #99"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def test_cli_output_escapes_file_names(tmp_path: Path) -> None:
    config = project(tmp_path)
    dumps = tmp_path / "dumps"
    write_dump(dumps / f"a\n{FORGED}\n.txt", dump_text([("Fine", ABSTRACT)]))
    write_dump(dumps / f"b\n{FORGED}\n.txt", b"junk\x00" * 100)
    write_dump(dumps / "c\x1b[2J.txt", dump_text([("Also Fine", OTHER)]))
    code, output = cli("-c", str(config), "ingest")
    assert code == 0
    assert not any(line.startswith(FORGED[:10]) for line in output.splitlines()), output
    assert "published issue #99" in output  # shown, escaped, inside a real line
    assert "\x1b" not in output
    assert "\\n" in output and "\\x1b" in output


def test_daemon_log_escapes_file_names_and_dump_text(tmp_path: Path) -> None:
    from digest.cli.context import setup_daemon_logging
    from digest.daemon.scheduler import Daemon, Watcher

    config = project(tmp_path, '\n[schedule]\nmode = "on_new_dump"\n')
    dumps = tmp_path / "dumps"
    write_dump(dumps / f"a\n{FORGED}\n.txt", dump_text([("Fine", ABSTRACT)]))
    write_dump(dumps / f"b\n{FORGED}\n.txt", b"junk\x00" * 100)
    stray = f"Mar 14\n\nTitle\n\n{ABSTRACT}\n\nTitle two\n\n{OTHER}\n{FORGED}\n"
    write_dump(dumps / "c.txt", stray)
    app = make_app(_settings_of(config))
    assert app.database.engine is not None  # migrations log before the daemon's format is set
    log_file = tmp_path / "daemon.log"
    setup_daemon_logging(False, log_file)
    try:
        daemon = Daemon(app)
        ticks = iter(range(0, 100, 10))
        daemon.watcher = Watcher(dumps, 1.0, clock=lambda: float(next(ticks)))
        daemon.poll()
        daemon.poll()
    finally:
        for h in logging.getLogger().handlers:
            h.close()
        logging.getLogger().handlers.clear()
    lines = log_file.read_text("utf-8").splitlines()
    assert len(lines) >= 3
    assert all(LOG_LINE.match(line) for line in lines), lines
    assert sum("published issue #99" in line for line in lines) >= 2


# --- bidi controls never reach an output ----------------------------------------------


def test_bidi_controls_are_stripped_from_every_output(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path)
    title = "Safe \u202eTitle\u202c With \u2066Isolates\u2069 and \u200fMarks\u061c"
    abstract = f"{ABSTRACT} Evil \u202egnp.exe\u202c here {BIDI}."
    write_dump(settings.dumps_dir / "d.txt", dump_text([(title, abstract), ("Plain", OTHER)]))
    app = make_app(settings)
    app.subscribers().add("ada@example.org")
    assert app.send().delivery.sent == 1
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


# --- CSV files from spreadsheets, and SMTP errors that say what to do -----------------


NAMED = "{0}email{1}name{2}ada@example.org{1}José Ñúñez{2}bob@example.org{1}Bob{2}"


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (NAMED.format("", ";", "\n").encode("latin-1"), "latin-1, semicolons"),
        (NAMED.format("", "\t", "\r\n").encode("utf-16"), "Excel UTF-16, tabs"),
        (NAMED.format("\ufeff", ";", "\r\n").encode("utf-8"), "UTF-8 BOM, semicolons"),
        (NAMED.format("", ",", "\n").encode("cp1252"), "Windows-1252, commas"),
        (b"ada@example.org\nbob@example.org\n", "plain"),
    ],
)
def test_csv_import_detects_encoding_and_delimiter(tmp_path: Path, data: bytes, what: str) -> None:
    config = project(tmp_path)
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    code, output = cli("-c", str(config), "subscribers", "import", str(path))
    assert code == 0, output
    assert "2 added" in output
    code, output = cli("-c", str(config), "subscribers", "list")
    names = {line.split("\t")[0]: line.split("\t")[-1] for line in output.splitlines()}
    assert "ada@example.org" in names and "bob@example.org" in names
    if what != "plain":
        assert names["ada@example.org"] == "José Ñúñez"


def test_csv_import_of_a_binary_file_is_one_line(tmp_path: Path) -> None:
    config = project(tmp_path)
    path = tmp_path / "in.csv"
    path.write_bytes(bytes(range(256)) * 8)
    code, output = cli("-c", str(config), "subscribers", "import", str(path))
    assert code == 1
    assert len(output.strip().splitlines()) == 1 and "in.csv" in output, output


class _Accept:
    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        return "250 OK"


@pytest.mark.parametrize(("security", "advice"), [("starttls", '"none"'), ("ssl", '"starttls"')])
def test_tls_mismatch_says_which_smtp_security_to_try(
    tmp_path: Path, security: str, advice: str
) -> None:
    with running_smtp(_Accept()) as (controller, _):
        config = project(
            tmp_path,
            f'\n[email]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\n'
            f'smtp_port = {controller.port}\nsmtp_security = "{security}"\nsmtp_timeout = 10\n'
            'recipients = ["ada@example.org"]\n',
        )
        write_dump(tmp_path / "dumps" / "d.txt", dump_text([("A Paper", ABSTRACT)]))
        code, output = cli("-c", str(config), "send")
    assert code == 1
    last = output.strip().splitlines()[-1]
    assert "issue #1 was published to the feeds and web; delivery is pending" in last, output
    assert f"smtp_security = {advice}" in last, output
    assert "WRONG_VERSION_NUMBER" not in output and "Traceback" not in output
    app = make_app(_settings_of(config))
    assert app.status().last_issue == 1


def test_unreachable_server_after_publishing_says_delivery_is_pending(
    tmp_path: Path,
) -> None:

    config = project(
        tmp_path,
        f'\n[email]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {free_port()}\n'
        'recipients = ["ada@example.org"]\n',
    )
    write_dump(tmp_path / "dumps" / "d.txt", dump_text([("A Paper", ABSTRACT)]))
    code, output = cli("-c", str(config), "send")
    assert code == 1
    assert "issue #1 was published to the feeds and web; delivery is pending" in output
    assert "next `digest send`" in output or "digest send" in output


# --- junk is not published; a growing file is one dump --------------------------------

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

    report = make_app(settings).send(notice=writer_finishes)
    assert len(notices) == 1 and "'fresh.txt' was modified" in notices[0], notices
    assert report.issue == 1, report.reason
    assert report.ingest.new_papers == len(parse_dump(str(SAMPLE)).papers)


def test_a_grown_dump_is_the_same_dump(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path)
    data = SAMPLE.read_bytes()
    path = settings.dumps_dir / "growing.txt"
    write_dump(path, data[: len(data) // 2])
    app = make_app(settings)
    first = app.ingest()
    assert [d.status for d in first.dumps] == ["ingested"]
    part = first.dumps[0].papers
    assert 20 < part < 74
    write_dump(path, data)
    second = app.ingest()
    assert [d.status for d in second.dumps] == ["ingested"]
    assert second.dumps[0].new_papers == 74 - part
    with app.session() as s:
        assert len(s.scalars(select(DumpFile)).all()) == 1
        assert len(s.scalars(select(Paper)).all()) == 74
        dump = s.scalars(select(DumpFile)).one()
        assert dump.paper_count == 74 and dump.size == len(data)
    assert app.ingest().dumps[0].status == "known"


# --- property: no dump text or subscriber field changes a header, adds markup, or reaches a token


def _parsed_papers(title: str, abstract: str) -> list[tuple[str, str, tuple[object, ...]]]:
    """(title, abstract, links) of the papers the parser finds in this dump text."""
    from datetime import UTC, datetime

    from digest.ingest.links import tidy_text
    from digest.ingest.parse import parse_bytes

    listing = parse_bytes(
        dump_text([(title, abstract), ("Padding paper", OTHER)]).encode("utf-8", "surrogatepass"),
        name="p.txt",
        mtime=datetime(2026, 5, 1, tzinfo=UTC),
    )
    return [(p.title, tidy_text(p.abstract), p.links) for p in listing.papers]


def _letter_and_messages(
    papers: list[tuple[str, str, tuple[object, ...]]], people: list[tuple[str, str]]
) -> tuple[object, dict[str, tuple[bytes, str]], str]:
    """The e-mail of a digest of these papers, built for each (address, name) as
    delivery builds it: (letter, {address: (message bytes, token)}, base url)."""
    from datetime import UTC, datetime

    from digest.mail.message import Envelope, MessageTemplate
    from digest.mail.variants import Personaliser
    from digest.render.renderer import DigestView, PaperView, SectionView
    from digest.render.viewmodel import subject_line

    base = "https://digest.example.org"
    views = []
    for n, (title, text, links) in enumerate(papers, start=1):
        url = f"{base}/archive/1.html#p-{n}"
        views.append(PaperView(f"k{n}", f"p-{n}", title, text, text, False, links, url))  # type: ignore[arg-type]
    # a section named after the first title, as discovered themes are
    sections = (SectionView(papers[0][0], "s", "s-s", tuple(views)),)
    view = DigestView(
        "Papers digest", 1, subject_line("Papers digest", 1, len(views), sections),
        datetime(2026, 5, 1, 8, tzinfo=UTC), sections, len(views), base,
        f"{base}/archive/1.html", f"{base}/feed.xml", f"{base}/",
    )  # fmt: skip
    personaliser = Personaliser(
        _RENDERER, f"{base}/unsubscribe/{PLACEHOLDER}", 10_000_000, lambda v: v.subject
    )
    letter = personaliser.letter(view)
    envelope = Envelope("Papers digest <digest@example.org>", "L <l.example.org>",
                        f"{base}/unsubscribe/{PLACEHOLDER}", "digest@example.org")  # fmt: skip
    template = MessageTemplate(letter, envelope, view.published_at)
    out = {}
    for i, (address, name) in enumerate(people):
        token = f"tok{i}x" + "A" * 40
        out[address] = (template.render(address, f"<m{i}@example.org>", token, name), token)
    return letter, out, base


def _structure(html: str) -> list[tuple[str, tuple[str, ...]]]:
    from lxml import html as lxml_html

    root = lxml_html.document_fromstring(html)
    return [(str(el.tag), tuple(sorted(el.attrib))) for el in root.iter()]


try:
    from digest.render.renderer import Renderer as _Renderer

    _RENDERER = _Renderer()
except Exception:  # pragma: no cover - the import errors show in every test anyway
    raise

HOSTILE_BITS = [
    PLACEHOLDER,
    "<script>alert(1)</script>",
    "</a><img src=x onerror=alert(1)>",
    '"><b>bold</b>',
    "\r\nBcc: injected@evil.example\r\n",
    "\nTo: other@evil.example",
    "=?utf-8?q?Bcc=3A_x=40evil=2Eexample?=",
    "{{ 7 * 7 }}{% raw %}",
    "\u202eevil\u2066",
    "\u2028\u2029\x85\x0b\x0c\x00\x1b[2J",
    "&amp;&lt;&#x3c;",
    "https://evil.example/?t=",
]
_hostile_text = st.lists(
    st.sampled_from(HOSTILE_BITS) | st.text(max_size=20), min_size=1, max_size=6
).map("".join)
_names = st.lists(st.sampled_from(HOSTILE_BITS) | st.text(max_size=15), max_size=4).map("".join)
_local = st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,15}[a-z0-9]", fullmatch=True).filter(
    lambda s: ".." not in s
)


@settings(
    max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "25")),  # more: HOSTILE_EXAMPLES=500
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    title=_hostile_text,
    abstract=_hostile_text,
    people=st.lists(st.tuples(_local, _names), min_size=2, max_size=3, unique_by=lambda p: p[0]),
)
def test_property_no_input_changes_a_header_adds_markup_or_reaches_a_token(
    title: str, abstract: str, people: list[tuple[str, str]]
) -> None:
    from digest.errors import DumpError

    people = [(f"{local}@example.org", name) for local, name in people]
    try:
        papers = _parsed_papers(title, abstract + " " + ABSTRACT)  # long enough
    except DumpError:
        assume(False)  # the title was not a title (blank, or a header line)
        return
    letter, messages, base = _letter_and_messages(papers, people)
    # the same digest with plain text in place of the dump's (same papers, same links)
    plain = [
        (f"Title {i}", "Abstract text. " * 9 if text else "", links)
        for i, (_, text, links) in enumerate(papers)
    ]
    _, baseline, _ = _letter_and_messages(plain, people)
    tokens = {address: token for address, (_, token) in messages.items()}
    for address, (raw, token) in messages.items():
        msg = parsed(raw)
        # headers: exactly the template's, To is the subscriber's address alone
        assert list(msg.keys()) == list(parsed(baseline[address][0]).keys())
        assert [a.addr_spec for a in msg["To"].addresses] == [address]
        from digest.mail.message import one_line

        subject = one_line(letter.subject)  # type: ignore[attr-defined]
        # the same text; spaces between encoded words may be folded away (RFC 2047 6.2)
        assert "".join(str(msg["Subject"]).split()) == "".join(subject.split())
        # markup: the HTML has the elements and attributes of the template, no others
        html, text = bodies(msg)
        assert _structure(html) == _structure(bodies(parsed(baseline[address][0]))[0])
        # tokens: only this subscriber's, only in the template's unsubscribe slots
        for body in (html, text):
            for other in set(tokens.values()) - {token}:
                assert other not in body
            starts = [m.start() for m in re.finditer(re.escape(token), body)]
            slots = (f"{base}/unsubscribe/", f"{base}/preferences/")  # the template's links
            assert starts and all(body[:i].endswith(slots) for i in starts)
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert head.count(token.encode()) == 2  # List-Unsubscribe: the mailto and the link
