"""Commands start at once: `digest --help` and the commands that only look or manage the
list import what they use, never the ORM's migrations, the e-mail inliner (premailer,
with requests and cssutils), scikit-learn or the template engine; and with subcommands
loaded lazily, every command's --help still lists every one of its options, the old
names marked as old. What is loaded is read from `sys.modules` of a real `digest`
process at its exit, not timed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from digest.program import main
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
