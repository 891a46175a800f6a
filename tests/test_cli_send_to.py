"""`digest send --to ADDR` checks ADDR as a subscriber's address: one address, one line.
A list (``a@x,evil@y``), a line break or an empty string is refused in one line before
anything is sent; a good address gets the one test message, at that address only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.program import main
from tests.support.dumps import SAMPLE_FILES
from tests.support.smtp import Recorder, running_smtp


def project(tmp_path: Path, port: int) -> Path:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    shutil.copy2(SAMPLE_FILES[0], dumps / SAMPLE_FILES[0].name)
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[digest]\ndumps_dir = "{dumps}"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[email]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
    )
    return config


@pytest.mark.parametrize(
    "to",
    [
        "ada@example.org,evil@example.net",
        "ada@example.org evil@example.net",
        "ada@example.org\r\nRCPT TO:<evil@example.net>",
        "ada@example.org\nevil@example.net",
        "",
    ],
    ids=["comma-list", "space-list", "crlf-command", "newline", "empty"],
)
def test_a_bad_test_address_is_refused_in_one_line(tmp_path: Path, to: str) -> None:
    with running_smtp(Recorder()) as (controller, recorder):
        config = project(tmp_path, controller.port)
        result = CliRunner().invoke(
            main, ["-c", str(config), "send", "--to", to], catch_exceptions=False
        )
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: send --to: ")
        assert result.output.count("\n") == 1, result.output
        assert recorder.messages == []


def test_a_good_test_address_gets_the_one_message(tmp_path: Path) -> None:
    with running_smtp(Recorder()) as (controller, recorder):
        config = project(tmp_path, controller.port)
        result = CliRunner().invoke(
            main, ["-c", str(config), "send", "--to", " Ada@Example.ORG "], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        assert [rcpts for rcpts, _ in recorder.messages] == [["Ada@example.org"]]
