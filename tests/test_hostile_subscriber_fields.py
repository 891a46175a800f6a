"""Hostile subscriber fields: names with line breaks or control characters, from the
command line or a CSV row, are refused in one line; CSV files from spreadsheets (any
encoding, any delimiter) are read, a binary one is refused in one line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from digest.app import make_app, subscribing
from tests.support.hostile import (
    INJECTED,
    cli,
    hostile_settings,
    project,
)


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
    book = subscribing.book(make_app(settings))
    text = 'email,name\nok@example.org,Ok\nevil@example.net,"Evil\r\nBcc: x@evil.example"\n'
    report = book.import_csv(io.StringIO(text, newline=""))
    assert report.added == 1
    assert len(report.errors) == 1
    line, problem = report.errors[0]
    assert line == 4 and "name" in problem
    assert [s.address for s in book.list()] == ["ok@example.org"]


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
