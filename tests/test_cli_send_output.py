"""What `digest send` and `digest ingest` print: each fact once and true — a dry run
"would" ingest, the recipients who get no letter are counted with the reason, a bad dump
is one line, and a reader closing the pipe (`| head -1`) is a normal end."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from digest.app import make_app, publishing, subscribing
from digest.config import load_settings
from digest.program import main
from tests.support.dumps import SAMPLE_FILES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "dumps").mkdir()
    for f in SAMPLE_FILES:
        shutil.copy2(f, tmp_path / "dumps" / f.name)  # settled
    (tmp_path / "digest.toml").write_text(
        '[email]\nrecipients = ["ada@example.org"]\n\n'
        '[[themes]]\nname = "Quantum gravity"\nkeywords = ["zzqq-no-paper-says-this"]\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    return tmp_path


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_a_dry_run_says_it_would_ingest_and_stores_nothing(project: Path) -> None:
    dry = run("send", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would ingest dumps/000_2d83581627280318.txt: 61 papers, 61 new" in dry.output
    assert "\ningested" not in "\n" + dry.output
    assert "0 seen" in run("status").output


def test_send_counts_the_subscribers_who_get_no_letter_and_why(project: Path) -> None:
    for n in range(3):
        assert run("subscribers", "add", f"q{n}@example.org", "--themes", "quantum-gravity")
    sent = run("send")
    assert sent.exit_code == 0, sent.output
    assert "to: " in sent.output and "q2@example.org" in sent.output
    assert "3 of them get no letter: none of the sections they chose is in this issue" in (
        sent.output
    )
    assert "delivery (state/outbox): 1 sent, 0 failed, 0 deferred" in sent.output


def test_a_bad_dump_is_reported_once(project: Path) -> None:
    for f in SAMPLE_FILES:
        (project / "dumps" / f.name).unlink()
    (project / "dumps" / "bad.txt").write_bytes(b"\x00\x01\x02 not text \xff\xfe" * 20)
    os.utime(project / "dumps" / "bad.txt", (1, 1))
    result = run("ingest")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert (
        len(lines) == 1 and lines[0].startswith("failed ") and "bad.txt: looks binary" in lines[0]
    ), result.output
    sent = run("send")
    assert sent.output.count("bad.txt") == 0, sent.output  # recorded: not read again


def test_a_closed_pipe_is_a_normal_end(project: Path) -> None:
    """`digest themes --format tsv | head -1`: the reader is gone before it writes."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "digest", "themes", "--format", "tsv"],
            cwd=project,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
        )
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (0, "")


def test_the_publish_log_counts_the_subscribers_skipped_as_status_does(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The daemon's log (the publish line) and `digest status` agree on the skipped."""
    app = make_app(load_settings(project / "digest.toml"))
    for n in range(2):  # through the app: the CLI would reset the log's handlers
        subscribing.book(app).add(f"q{n}@example.org", themes="quantum-gravity")
    with caplog.at_level(logging.INFO, logger="digest.app"):
        report = publishing.send(app, settle_wait=False)  # as the daemon calls it
    assert report.issue == 1 and report.unselected == 2
    published = [r.getMessage() for r in caplog.records if "published issue #1" in r.getMessage()]
    assert len(published) == 1
    assert "1 letters to deliver, 2 skipped (none of their chosen sections" in published[0]
    assert "2 skipped" in run("status").output
