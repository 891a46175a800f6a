"""The command line, through click's CliRunner against real state in a temp folder."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from digest.config import (
    DigestSection,
    EmailSection,
    ScheduleSection,
    iter_settings,
    load_settings,
)
from digest.program import main
from tests.support.commands import every_command
from tests.support.dumps import SAMPLE_FILES
from tests.support.net import free_port


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder laid out as a user would: digest.toml, dumps/ with the samples."""
    (tmp_path / "dumps").mkdir()
    for f in SAMPLE_FILES:
        shutil.copy2(f, tmp_path / "dumps" / f.name)  # keeps the mtime: a settled file
    (tmp_path / "digest.toml").write_text(
        '[email]\nrecipients = ["ada@example.org"]\n\n'
        '[[themes]]\nname = "Mixture of experts"\nkeywords = ["mixture of experts", "moe"]\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    return tmp_path


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_every_command_and_option_has_help() -> None:
    commands = every_command(main)
    assert {("subscribers", "import"), ("run",), ("serve",), ("themes",)} <= {
        p for p, _ in commands
    }
    for path, command in commands:
        assert command.help and len(command.help) > 20, path
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.name}"
        result = run(*path, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def test_every_setting_has_help_and_init_writes_them_all(tmp_path: Path) -> None:
    target = tmp_path / "digest.toml"
    assert run("init", str(target)).exit_code == 0
    written = target.read_text()
    data = tomllib.loads(written)
    for section, key, help_text in iter_settings():
        assert help_text, f"{section}.{key} has no help"
        assert key in data[section], f"{section}.{key} missing from init"
        assert f"# {help_text}" in written
    loaded = load_settings(target, environ={})
    assert (loaded.digest, loaded.email, loaded.schedule) == (
        DigestSection(),
        EmailSection(),
        ScheduleSection(),
    )
    again = run("init", str(target))
    assert again.exit_code == 1 and "exists; use --force" in again.output


def test_send_status_and_second_send(project: Path) -> None:
    first = run("send")
    assert first.exit_code == 0, first.output
    assert "published issue #1: #1 · 176 papers: " in first.output
    assert "delivery" in first.output and "1 sent" in first.output
    second = run("send")
    assert second.exit_code == 0
    assert second.output.strip().splitlines()[-1].startswith("nothing to publish: no new dump")
    status = run("status").output
    assert "176 seen, 0 pending, 176 sent" in status
    assert "3 ingested, 0 failed" in status and "last digest: #1" in status


def test_dry_run_and_preview_publish_nothing(project: Path) -> None:
    dry = run("send", "--dry-run")
    assert dry.exit_code == 0 and "would publish issue #1" in dry.output
    assert "would mail: ada@example.org" in dry.output
    preview = run("preview", "--out", "p.html")
    assert preview.exit_code == 0
    subject = preview.output.splitlines()[0]  # the subject: issue number and paper count
    assert "#1" in subject and "176" in subject
    email, web = (project / "p.html").read_text(), (project / "p.web.html").read_text()
    for page in (email, web):  # whole documents, each with the configured section
        assert page.startswith("<!DOCTYPE html") and page.rstrip().endswith("</html>")
        assert ">Mixture of experts<" in page
    assert "Mixture of experts" in (project / "p.txt").read_text()
    assert "<" not in (project / "p.txt").read_text().split("http")[0]  # text, not markup
    assert "176 seen" not in run("status").output  # nothing stored
    assert not (project / "state" / "public").exists()


def test_ingest_reports_each_file_and_fails_when_all_fail(project: Path) -> None:
    ok = run("ingest")
    assert ok.exit_code == 0 and ok.output.count("ingested ") == 3
    bad = project / "junk.bin"
    bad.write_bytes(b"\x00\x01\x02" * 500)
    result = run("ingest", str(bad))
    assert result.exit_code == 1
    assert "junk.bin" in result.output and "failed" in result.output


def test_errors_are_one_line_without_traceback(project: Path) -> None:
    (project / "digest.toml").write_text("[email]\nsmtp_port = 'twenty-five'\n")
    result = run("status")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "email.smtp_port" in lines[0] and "expected a whole number" in lines[0]


def test_missing_dumps_folder_is_a_clear_error(project: Path) -> None:
    (project / "digest.toml").write_text('[digest]\ndumps_dir = "nowhere"\n')
    result = run("send")
    assert result.exit_code == 1
    assert "nowhere: dumps folder does not exist" in result.output


def test_unreachable_smtp_fails_the_run_and_keeps_deliveries(project: Path) -> None:
    port = free_port()
    (project / "digest.toml").write_text(
        f'[email]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
        'recipients = ["ada@example.org"]\n'
    )
    result = run("send")
    assert result.exit_code == 1
    assert f"cannot reach SMTP server 127.0.0.1:{port}" in result.output
    assert "1 pending" in run("status").output
