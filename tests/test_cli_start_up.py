"""Commands start at once: `digest --help` and the commands that only look or manage the
list import what they use, never the ORM's migrations, the e-mail inliner (premailer,
with requests and cssutils), scikit-learn or the template engine; and with subcommands
loaded lazily, every command's --help still lists every one of its options, the old
names marked as old. What is loaded is read from `sys.modules` of a real `digest`
process at its exit, not timed."""

from __future__ import annotations

import io
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from digest.app import App
from digest.config import Settings
from digest.program import main
from digest.state.subscriber_glance import Unsubscribed
from tests.support.commands import every_command
from tests.support.dumps import SAMPLE_FILES

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("alembic", "premailer", "requests", "cssutils", "sklearn", "scipy", "jinja2")

# run `digest ARGS` in this process, then print every module it loaded, one a line
LOADED = """
import sys
from digest.program import main
try:
    main(sys.argv[1:], prog_name="digest")
except SystemExit:
    pass
print("\\n--modules--")
print("\\n".join(sorted(sys.modules)))
"""


def loaded(folder: Path, *args: str) -> set[str]:
    """The top-level packages and modules a `digest ARGS` process imported."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(folder)}
    result = subprocess.run(
        [sys.executable, "-c", LOADED, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    names = result.stdout.split("\n--modules--\n", 1)[1].split()
    return set(names)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A settings file and one dump ingested: the state exists, at the newest schema."""
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    shutil.copy(SAMPLE_FILES[0], dumps / SAMPLE_FILES[0].name)
    (tmp_path / "digest.toml").write_text(
        f'[digest]\ndumps_dir = "{dumps}"\nstate_dir = "{tmp_path / "state"}"\n'
        "[schedule]\nsettle_seconds = 0\n"
        '[email]\ntransport = "maildir"\nrecipients = []\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(main, ["-c", str(tmp_path / "digest.toml"), "ingest"])
    assert result.exit_code == 0, result.output
    return tmp_path


def test_help_imports_neither_the_database_nor_the_renderer(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "--help")
    assert "digest.cli.main" in modules  # it did run
    assert not {m for m in modules if m.split(".")[0] in (*HEAVY, "sqlalchemy")}
    below = {m for m in modules if m.startswith(("digest.state.", "digest.render", "digest.app."))}
    assert below <= {"digest.state.states"}  # the words of the statuses, no SQL


@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("subscribers", "list"),
        ("subscribers", "add", "ada@example.org"),
        ("unsubscribe", "x" * 43),
    ],
    ids=" ".join,
)
def test_commands_that_only_look_or_manage_the_list_load_no_renderer(
    project: Path, args: tuple[str, ...]
) -> None:
    modules = loaded(project, "-c", str(project / "digest.toml"), *args)
    assert f"digest.cli.{'status' if args == ('status',) else 'subscribers'}" in modules
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


def test_status_reads_the_state_without_sqlalchemy(project: Path) -> None:
    """A state at the newest schema is read with sqlite3 alone: SQLAlchemy, its ORM and
    the tables' models stay unloaded (tests/test_cli_status.py: it shows the same)."""
    modules = loaded(project, "-c", str(project / "digest.toml"), "status")
    assert "digest.state.glance" in modules  # it did run
    assert not {m for m in modules if m.split(".")[0] == "sqlalchemy"}
    assert "digest.state.models" not in modules


def test_a_worker_starts_without_the_renderer(project: Path) -> None:
    """A worker on an empty outbox loads neither the templates nor the e-mail inliner:
    they load when a message is rendered, not before the first claim."""
    modules = loaded(project, "-c", str(project / "digest.toml"), "worker", "--drain")
    assert "digest.mail.delivery" in modules  # it did run
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


def test_every_command_s_help_lists_every_option_and_marks_old_names() -> None:
    commands = every_command(main)
    names = {path for path, _ in commands}
    assert {
        ("send",),
        ("status",),
        ("run",),
        ("serve",),
        ("themes",),
        ("subscribers", "import"),
    } <= (names)
    runner = CliRunner()
    for path, command in commands:
        shown = runner.invoke(main, [*path, "--help"], terminal_width=200)
        assert shown.exit_code == 0, (path, shown.output)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in (*param.opts, *param.secondary_opts):
                    assert opt in shown.output, (path, opt)
    listing = runner.invoke(main, ["--help"], terminal_width=200).output
    assert "themes       Old name of `digest topics`" in listing
    old = runner.invoke(main, ["themes", "--help"], terminal_width=200).output
    assert "Old name of `digest topics`, kept working." in old


def test_listing_and_unsubscribing_read_the_state_without_sqlalchemy(project: Path) -> None:
    """`subscribers list` and `unsubscribe` on a state at the newest schema go through
    sqlite3 alone, as `status` does (the same data as the subscriber book: below)."""
    config = ("-c", str(project / "digest.toml"))
    added = CliRunner().invoke(main, [*config, "subscribers", "add", "ada@example.org"])
    assert added.exit_code == 0, added.output
    with sqlite3.connect(project / "state" / "digest.db") as conn:
        [(token,)] = conn.execute("SELECT token FROM subscribers").fetchall()
    for args in (("subscribers", "list"), ("unsubscribe", "--", token)):
        modules = loaded(project, *config, *args)
        assert "digest.state.subscriber_glance" in modules, args  # it did run
        assert not {m for m in modules if m.split(".")[0] == "sqlalchemy"}, args
        assert "digest.state.models" not in modules, args
    with sqlite3.connect(project / "state" / "digest.db") as conn:
        assert conn.execute("SELECT status FROM subscribers").fetchall() == [("unsubscribed",)]


CSV = """\
email,name,themes,status
ada@example.org,Ada Lovelace,,
zoe@example.org,"Zoë, née Ünal",{topics},
bob@example.org,,,unsubscribed
kim@example.org,Kim,{topic},bounced
"""


def test_the_driver_alone_lists_and_unsubscribes_as_the_subscriber_book_does(
    settings: Settings,
) -> None:
    from digest.app import make_app, publishing, subscriber_glance, subscribing

    app = make_app(settings)
    book = subscribing.book(app)
    slugs = [slug for slug, _ in subscribing.theme_choices(app)][:2]
    csv = CSV.format(topics=";".join(slugs), topic=slugs[0])
    assert not book.import_csv(io.StringIO(csv)).errors
    assert publishing.publish(app).issue == 1  # pending deliveries to the active ones
    tokens = {a: t for a, t in _rows(app, "SELECT address, token FROM subscribers")}
    with app.database.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE subscribers SET bounce_count = 2 WHERE name = 'Kim'")

    def fields(rows: Sequence[Any]) -> list[tuple[Any, ...]]:
        return [(s.address, s.name, s.status, s.themes, s.bounce_count) for s in rows]

    for status in (None, "active", "unsubscribed", "bounced"):
        seen = subscriber_glance.listing(app, status)
        assert seen is not None and fields(seen) == fields(book.list(status)), status
    listed = CliRunner().invoke(main, ["-c", str(write_config(settings)), "subscribers", "list"])
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == [  # the ordinary way's lines
        f"{s.address}\t{s.status}{bounces(s.bounce_count)}\t{';'.join(s.themes) or 'all'}"
        f"\t{s.name}".rstrip()
        for s in book.list()
    ]
    assert {
        "ada@example.org\tactive\tall\tAda Lovelace",
        f"zoe@example.org\tactive\t{';'.join(slugs)}\tZoë, née Ünal",
        "bob@example.org\tunsubscribed\tall",
        f"kim@example.org\tbounced (2 bounces)\t{slugs[0]}\tKim",
    } <= set(listed.stdout.splitlines())

    # one reader leaves through the driver alone, the other through the book
    assert subscriber_glance.unsubscribe(app, tokens["ada@example.org"]) == (
        Unsubscribed("ada@example.org")
    )
    assert book.unsubscribe(tokens["zoe@example.org"]) is not None
    left = _rows(
        app,
        "SELECT s.address, s.status, s.unsubscribed_at IS NOT NULL, d.status, d.last_error "
        "FROM subscribers s JOIN deliveries d ON d.subscriber_id = s.id "
        "WHERE s.address IN ('ada@example.org', 'zoe@example.org') ORDER BY s.id",
    )
    assert [row[1:] for row in left] == [
        ("unsubscribed", True, "skipped", "subscriber unsubscribed"),
    ] * 2
    assert subscriber_glance.unsubscribe(app, tokens["zoe@example.org"]) == (
        Unsubscribed("zoe@example.org", already=True)
    )
    assert subscriber_glance.unsubscribe(app, "x" * 43) == Unsubscribed(None)
    assert subscriber_glance.unsubscribe(app, "not a token") == Unsubscribed(None)
    again = CliRunner().invoke(
        main, ["-c", str(write_config(settings)), "unsubscribe", "--", tokens["ada@example.org"]]
    )
    assert again.exit_code == 0 and again.stdout == "ada@example.org: was already unsubscribed\n"
    app.database.engine.dispose()


def bounces(n: int) -> str:
    return f" ({n} bounces)" if n else ""


def _rows(app: App, sql: str) -> list[tuple[Any, ...]]:
    with app.database.engine.connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(sql)]


def write_config(settings: Settings) -> Path:
    path = settings.state_dir.parent / "list.toml"
    path.write_text(
        f'[digest]\ndatabase_url = "{settings.database_url}"\n'
        f'state_dir = "{settings.state_dir}"\ndumps_dir = "{settings.digest.dumps_dir}"\n',
        encoding="utf-8",
    )
    return path
