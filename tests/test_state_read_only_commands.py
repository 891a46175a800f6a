"""Building the app touches nothing: read-only commands read the state that exists (none
yet = the empty state, reported as such), load no template, and create nothing; the
database is created and migrated by the first command that writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import click.testing
import pytest
from click.testing import CliRunner

from digest.program import main
from tests.support.dumps import SAMPLE_FILES


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's folder: dumps/ with the samples and a digest.toml naming no template set
    that exists."""
    (tmp_path / "dumps").mkdir()
    for f in SAMPLE_FILES:
        shutil.copy2(f, tmp_path / "dumps" / f.name)
    (tmp_path / "digest.toml").write_text('[digest]\ntheme = "no-such-look"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    return tmp_path


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_read_only_commands_report_the_empty_state_and_create_nothing(folder: Path) -> None:
    status = run("status")
    assert status.exit_code == 0, status.output
    assert "(not created yet: `digest send` or `digest ingest`)" in status.output
    assert "papers:   0 seen, 0 pending, 0 sent" in status.output
    assert "daemon:   not running" in status.output
    listed = run("subscribers", "list")
    assert listed.exit_code == 0 and listed.output == "0 subscriber(s)\n"
    exported = run("subscribers", "export")
    assert exported.exit_code == 0 and exported.output.startswith("email,name,themes,status")
    assert sorted(p.name for p in folder.iterdir()) == ["digest.toml", "dumps"]


@pytest.mark.parametrize("command", ["send", "send --dry-run", "preview"])
def test_commands_that_render_fail_on_the_template_set_before_storing(
    folder: Path, command: str
) -> None:
    result = run(*command.split())
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: unknown template set 'no-such-look' (digest.template_set)"
    )
    assert result.output.count("\n") == 1
    assert sorted(p.name for p in folder.iterdir()) == ["digest.toml", "dumps"]


@pytest.mark.parametrize("command", ["send", "send --dry-run"])
def test_a_bad_areas_file_stops_send_before_it_stores_anything(folder: Path, command: str) -> None:
    (folder / "digest.toml").write_text('[digest]\nareas_file = "no-such-areas.toml"\n')
    result = run(*command.split())
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {folder / 'no-such-areas.toml'}: areas file not found; set [digest] areas_file "
        "to a TOML file\n"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["digest.toml", "dumps"]


def test_a_dry_run_reads_the_dumps_without_creating_the_state(folder: Path) -> None:
    (folder / "digest.toml").write_text("")
    dry = run("send", "--dry-run")
    assert dry.exit_code == 0 and "would publish issue #1" in dry.output
    assert sorted(p.name for p in folder.iterdir()) == ["digest.toml", "dumps"]


def test_status_of_an_existing_state_loads_no_template(folder: Path) -> None:
    (folder / "digest.toml").write_text("")
    assert run("send").exit_code == 0
    made = state_files(folder)
    (folder / "digest.toml").write_text('[digest]\ntheme = "no-such-look"\n')
    status = run("status")
    assert status.exit_code == 0, status.output
    assert "0 pending, 176 sent" in status.output and "last digest: #1" in status.output
    assert run("subscribers", "list").exit_code == 0
    # nothing new (no lock file, no page) appeared under state/
    assert state_files(folder) == made


def state_files(folder: Path) -> list[Path]:
    """What is under state/, but SQLite's own -wal/-shm files (they come and go)."""
    return sorted(
        p.relative_to(folder)
        for p in (folder / "state").rglob("*")
        if not p.name.endswith(("-wal", "-shm"))
    )
