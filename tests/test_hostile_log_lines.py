"""Every event is one log line, whatever outside text it quotes: a dump file named with
a line break and a fake "INFO published issue #999" line, escape sequences (ESC[2J, an
OSC title) in a file name, a relay's multi-line reply. The daemon's log file and
`digest ingest`'s output show them escaped, never raw."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.app import make_app, publishing
from digest.cli.context import setup_daemon_logging
from digest.program import main
from tests.support.hostile import ABSTRACT, OTHER, cli, dump_text, project, settings_of, write_dump
from tests.support.settings import make_settings
from tests.support.smtp import running_smtp

FORGED = "\n2026-12-03 08:00:00 INFO published issue #999\n"
ESCAPES = "\x1b[2J\x1b]0;owned\x07"
A1 = (
    "We study one thing in depth, across many settings and data sets, and find that it "
    "works well in each of them, which we explain with a small model of the training "
    "dynamics and a set of careful ablations on three benchmarks of different sizes."
)
A2 = A1.replace("one thing", "another thing")
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put back the root logger's handlers and level the test's logging set-up replaced."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:], root.level = handlers, level


def hostile_dumps(folder: Path) -> None:
    """A dump whose name forges a log line, and one whose name clears the terminal and
    sets its title; each has a title without an abstract, so each has a warning."""
    folder.mkdir(exist_ok=True)
    for name, other in ((f"a{FORGED}.txt", "One"), (f"c{ESCAPES}.txt", "Three")):
        path = folder / name
        text = f"{A1}\n\nLonely {other}\n\n{other} Again\n\n{A2}".replace("one thing", other)
        path.write_text(f"new\n\nMar 14\n\n{other}\n\n{text}\n")
        os.utime(path, (time.time() - 3600, time.time() - 3600))


class Multiline:
    """A relay that refuses every recipient with a multi-line reply whose second line
    reads like a log line of ours."""

    async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
        return "550-5.1.1 no such user\r\n550 2026-12-03 08:00:00 INFO published issue #999"


def test_the_daemon_log_has_one_line_per_event(tmp_path: Path, root_logging: None) -> None:
    log_file = tmp_path / "daemon.log"
    setup_daemon_logging(False, log_file)
    dumps = tmp_path / "dumps"
    hostile_dumps(dumps)
    settings = make_settings(tmp_path, dumps)
    with running_smtp(Multiline()) as (controller, _):
        email = replace(
            settings.email, transport="smtp", smtp_host="127.0.0.1", smtp_port=controller.port
        )
        report = publishing.send(make_app(replace(settings, email=email)))
    assert report.issue == 1 and report.delivery.failed == 2
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text("utf-8")
    lines = text.splitlines()
    assert "published issue #999" in text  # the forged text is there, quoted
    assert any("title with no abstract" in line for line in lines), text
    assert any("no such user" in line for line in lines), text
    assert [line for line in lines if not LINE.match(line)] == []
    # the warning, the "ingested" line, the two refusals: each one line
    assert len([line for line in lines if "#999" in line]) == 4, text
    assert "\x1b" not in text and "\x07" not in text


def test_ingest_output_shows_escape_sequences_escaped(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    hostile_dumps(dumps)
    config = tmp_path / "digest.toml"
    config.write_text(f'[digest]\ndumps_dir = "{dumps}"\nstate_dir = "{tmp_path / "state"}"\n')
    result = CliRunner().invoke(main, ["-c", str(config), "ingest"], catch_exceptions=False)
    output = result.output
    assert "\x1b" not in output and "\x07" not in output, repr(output)
    assert "\\x1b[2J" in output, output
    assert not [line for line in output.splitlines() if line.startswith("2026-12-03")], output


def test_the_web_servers_own_records_go_through_the_one_line_escaping(tmp_path: Path) -> None:
    import io
    import logging

    from digest.app import make_app
    from digest.logtext import escape_handlers
    from digest.web.server import make_server
    from tests.support.settings import make_settings

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        escape_handlers()
        make_server(make_app(make_settings(tmp_path, tmp_path)), "127.0.0.1", 0)
        logging.getLogger("uvicorn.error").error("bad request\nINFO published issue #999")
    finally:
        root.removeHandler(handler)
    # uvicorn's own handler printed the forged second line raw, beside ours
    assert stream.getvalue() == "bad request\\nINFO published issue #999\n"


# --- file names and dump text in `digest ingest` output and in the daemon's log -----------

FORGED_LINE = "2026-01-01 00:00:00 INFO published issue #99"


def test_cli_output_escapes_file_names(tmp_path: Path) -> None:
    config = project(tmp_path)
    dumps = tmp_path / "dumps"
    write_dump(dumps / f"a\n{FORGED_LINE}\n.txt", dump_text([("Fine", ABSTRACT)]))
    write_dump(dumps / f"b\n{FORGED_LINE}\n.txt", b"junk\x00" * 100)
    write_dump(dumps / "c\x1b[2J.txt", dump_text([("Also Fine", OTHER)]))
    code, output = cli("-c", str(config), "ingest")
    assert code == 0
    assert not any(line.startswith(FORGED_LINE[:10]) for line in output.splitlines()), output
    assert "published issue #99" in output  # shown, escaped, inside a real line
    assert "\x1b" not in output
    assert "\\n" in output and "\\x1b" in output


def test_daemon_log_escapes_file_names_and_dump_text(tmp_path: Path) -> None:
    from digest.cli.context import setup_daemon_logging
    from digest.daemon.scheduler import Daemon, Watcher

    config = project(tmp_path, '\n[schedule]\nmode = "on_new_dump"\n')
    dumps = tmp_path / "dumps"
    write_dump(dumps / f"a\n{FORGED_LINE}\n.txt", dump_text([("Fine", ABSTRACT)]))
    write_dump(dumps / f"b\n{FORGED_LINE}\n.txt", b"junk\x00" * 100)
    stray = f"Mar 14\n\nTitle\n\n{ABSTRACT}\n\nTitle two\n\n{OTHER}\n{FORGED_LINE}\n"
    write_dump(dumps / "c.txt", stray)
    app = make_app(settings_of(config))
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
    assert all(LINE.match(line) for line in lines), lines
    assert sum("published issue #99" in line for line in lines) >= 2
