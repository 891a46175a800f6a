"""`digest subscribers import` of the files spreadsheets write: the encoding is found
with care (a wrong guess rare and visible: the encoding used is printed), can be named
with --encoding, and the delimiter is found; `subscribers add` on someone who left names
--resubscribe."""

from __future__ import annotations

import mailbox
import shutil
from email import message_from_bytes, policy
from email.headerregistry import Address
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from digest.program import main
from tests.support.dumps import SAMPLE_FILES

NAMES = ["François Lefèvre", "Zoë Brontë", "José Núñez", "Jürgen Weiß", "Hélène Côté"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "dumps").mkdir()
    for f in SAMPLE_FILES:
        shutil.copy2(f, tmp_path / "dumps" / f.name)
    (tmp_path / "digest.toml").write_text("[email]\nrecipients = []\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    return tmp_path


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def excel_csv(path: Path, names: list[str], rows: int, encoding: str) -> Path:
    """What Excel's "CSV (semicolon)" writes on a European Windows: a code page, CRLF."""
    lines = ["email;name;themes"] + [
        f"p{i}@example.org;{names[i % len(names)]};" for i in range(rows)
    ]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def test_a_long_windows_1252_file_keeps_its_accents_up_to_the_to_header(project: Path) -> None:
    csv_file = excel_csv(project / "excel.csv", NAMES, 80, "cp1252")  # > 2 KB: detection
    imported = run("subscribers", "import", str(csv_file))
    assert imported.exit_code == 0, imported.output
    assert "read 80 row(s) of excel.csv as windows-1252, semicolon-separated" in imported.output
    assert "80 added" in imported.output
    listed = run("subscribers", "list").output
    assert "p0@example.org\tactive\tall\tFrançois Lefèvre" in listed, listed
    assert "Lefčvre" not in listed
    assert run("send").exit_code == 0
    to = {}
    for msg in mailbox.Maildir(project / "state" / "outbox", create=False):
        parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
        address = parsed["To"].addresses[0]
        assert isinstance(address, Address)
        to[address.addr_spec] = address.display_name
    assert to["p0@example.org"] == "François Lefèvre"
    assert to["p3@example.org"] == "Jürgen Weiß"


def test_another_code_page_is_named_with_encoding_and_the_guess_is_visible(
    project: Path,
) -> None:
    csv_file = excel_csv(project / "cz.csv", ["Antonín Dvořák", "Łukasz Wróbel"], 40, "cp1250")
    guessed = run("subscribers", "import", str(csv_file))
    assert "as windows-1252" in guessed.output  # a Latin code page is read as Excel's
    assert "Dvoøák" in run("subscribers", "list").output  # wrong, and seen to be
    assert run("subscribers", "remove", *[f"p{i}@example.org" for i in range(40)]).exit_code == 0
    named = run("subscribers", "import", "--encoding", "windows-1250", str(csv_file))
    assert named.exit_code == 0, named.output
    assert "read 40 row(s) of cz.csv as windows-1250, semicolon-separated" in named.output
    assert "Antonín Dvořák" in run("subscribers", "list").output


def test_a_cyrillic_code_page_is_found(project: Path) -> None:
    names = ["Пётр Ильич Чайковский", "Анна Андреевна Ахматова", "Лев Николаевич Толстой"]
    csv_file = excel_csv(project / "ru.csv", names, 60, "cp1251")
    imported = run("subscribers", "import", str(csv_file))
    assert "as windows-1251" in imported.output, imported.output
    assert "Анна Андреевна Ахматова" in run("subscribers", "list").output


def test_an_unknown_encoding_name_is_one_line(project: Path) -> None:
    csv_file = excel_csv(project / "x.csv", NAMES, 3, "utf-8")
    result = run("subscribers", "import", "--encoding", "klingon", str(csv_file))
    assert result.exit_code == 1
    assert "--encoding klingon: not a text encoding Python knows" in result.output


def test_add_on_an_unsubscribed_address_names_resubscribe(project: Path) -> None:
    assert run("subscribers", "add", "ada@example.org").exit_code == 0
    token = run("subscribers", "list").output  # no token there: unsubscribe by CSV
    (project / "gone.csv").write_text("email,status\nada@example.org,unsubscribed\n")
    assert run("subscribers", "import", str(project / "gone.csv")).exit_code == 0
    assert "unsubscribed" in run("subscribers", "list").output, token
    again = run("subscribers", "add", "ada@example.org")
    assert again.output.strip() == (
        "ada@example.org: still unsubscribed; use --resubscribe to make it active "
        "(only if they asked to come back)"
    )
