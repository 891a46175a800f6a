"""Subscriber files (CSV): reading what a spreadsheet saved (encoding, delimiter, the
header), importing its rows in the caller's transaction, and exporting the list so that
a spreadsheet never runs a cell as a formula."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TextIO

from digest.mail import feedback_columns
from digest.mail.subscribers import (
    CSV_FIELDS,
    ImportReport,
    SubscriberError,
    changes_of,
    check_name,
    check_status,
    new_subscriber,
    normalize,
    parse_themes,
)
from digest.personal.phrases import PhraseError, check_phrases
from digest.state import readers
from digest.state import subscribers as stored
from digest.state.handles import Tx
from digest.state.subscribers import NewSubscriber

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class Table:
    """A subscriber file decoded: its text, the encoding it was read as (a name people
    know: "utf-8", "windows-1252", …), its delimiter and how many records it holds."""

    text: str
    encoding: str
    delimiter: str
    rows: int


def read_table(data: bytes, name: str, encoding: str | None = None) -> Table:
    """A subscriber file as a spreadsheet saved it, in ``encoding`` when one is given,
    else: the encoding of its BOM (UTF-8, UTF-16, UTF-32), else strict UTF-8, else
    Windows-1252 (what Excel writes in Western Europe and the Americas) unless
    charset-normalizer finds another script (Cyrillic, Greek, Asian, …). Another Latin
    code page is never guessed: "Lefèvre" in Windows-1252 reads as "Lefčvre" in
    Windows-1250, and such a guess is wrong far more often than right; `--encoding`
    names it. A binary file is refused in one line naming it."""
    text, used = _decode(data, name, encoding)
    text = text.lstrip("\ufeff")
    dialect = _dialect(text[:8192])
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    records = [row for row in reader if any(cell.strip() for cell in row)]
    header = bool(records) and "email" in (cell.strip().lower() for cell in records[0])
    return Table(text, used, dialect.delimiter, len(records) - header)


def _known_name(codec: str) -> str:
    """A codec's name as people know it ("windows-1252", not Python's "cp1252")."""
    name = codecs.lookup(codec).name
    if re.fullmatch(r"cp125\d", name):
        return "windows-" + name[2:]
    return {"iso8859-1": "iso-8859-1", "latin-1": "iso-8859-1"}.get(name, name)


def _decode(data: bytes, name: str, encoding: str | None) -> tuple[str, str]:
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise SubscriberError(
                f"--encoding {encoding}: not a text encoding Python knows",
                hint="e.g. utf-8, windows-1252, windows-1250, iso-8859-15, utf-16",
            ) from None
        try:
            return data.decode(encoding), _known_name(encoding)
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise SubscriberError(
                f"{name}: line {line}: not valid {_known_name(encoding)} text: {exc.reason}",
                hint="leave out --encoding to have it found, or name another",
            ) from None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            label = _known_name(codec) + " with a BOM"
            try:
                return data.decode(codec), label
            except UnicodeDecodeError as exc:
                raise SubscriberError(f"{name}: not valid {label} text: {exc.reason}") from None
    if b"\x00" in data:
        raise SubscriberError(
            f"{name}: looks binary, not a CSV or text file",
            hint="save it from the spreadsheet as CSV (or as one address per line)",
        )
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    try:
        western = data.decode("cp1252")
    except UnicodeDecodeError:
        western = None
    if western is not None and (best is None or _latin_only(str(best))):
        return western, "windows-1252"
    if best is None:
        raise SubscriberError(
            f"{name}: cannot tell the text encoding of this file",
            hint="save it from the spreadsheet as CSV UTF-8, or name it with --encoding",
        )
    return str(best), _known_name(best.encoding)


def _latin_only(text: str) -> bool:
    """Whether every letter of ``text`` beyond ASCII is a Latin one."""
    return all(
        unicodedata.name(ch, "").startswith("LATIN")
        for ch in set(text)
        if ord(ch) > 127 and ch.isalpha()
    )


def _dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    """The CSV dialect of ``sample``: comma, semicolon (European spreadsheets), tab
    (Excel's "Unicode text") or bar: the one that makes 'email' a column of the first
    line, else what csv.Sniffer finds, else a comma."""
    head = sample.split("\n", 1)[0].lower()
    for delimiter in ",;\t|":
        if "email" in (cell.strip().strip('"') for cell in head.split(delimiter)):
            return _Delimited(delimiter)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


class _Delimited(csv.excel):
    def __init__(self, delimiter: str) -> None:
        super().__init__()
        self.delimiter = delimiter


Row = tuple[int, str, str | None, tuple[str, ...] | None, str | None]  # line, address, …


def read_csv(
    tx: Tx,
    stream: TextIO,
    topics: Callable[[str], tuple[str, ...]] = parse_themes,
) -> ImportReport:
    """Import rows of ``email,name,themes,status`` (only ``email`` is required; the
    delimiter may also be ``;``, a tab or ``|``; ``topics`` is read as ``themes``), or a
    plain list of addresses, one a line. ``topics`` turns a row's topics into slugs (and
    refuses an unknown one). A bad row is reported with its line number; the good ones
    go in. Every row is
    validated first, in one pass; then the known addresses are looked up in batches and
    the new ones inserted in bulk, in the caller's transaction (nothing half-imported)."""
    text = stream.read().lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text[:8192]))
    report = ImportReport()
    first = next(reader, [])
    header = [_COLUMN_NAMES.get(h.strip().lower(), h.strip().lower()) for h in first]
    rows: Iterable[list[str]] = reader
    if "email" not in header:
        if len(first) != 1 or "@" not in first[0]:
            raise SubscriberError(
                "line 1: the header must name an 'email' column",
                hint="or give one address per line, with no header",
            )
        header, rows = ["email"], itertools.chain([first], reader)  # a plain list
    for extra in [h for h in header if h not in CSV_FIELDS]:
        report.notes.append((1, f"unknown column {extra!r} ignored"))
    parsed: list[Row] = []
    phrases: list[tuple[str, str | None, str | None]] = []  # (key, watch, mute) to set
    for row in rows:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        try:
            cells = dict(zip(header, row, strict=False))
            watched = phrase_cells(cells)
            parsed.append((line, *_parse_row(cells, topics)))
            if watched is not None:
                phrases.append((parsed[-1][1].lower(), *watched))
            if len(row) > len(header):
                report.notes.append((line, "more fields than the header; extra ignored"))
        except SubscriberError as exc:
            report.errors.append((line, exc.message))
    _store_rows(tx, parsed, report)
    readers.set_many(tx, phrases)
    report.notes.sort(key=lambda note: note[0])
    return report


_COLUMN_NAMES = {"topics": "themes"}  # what a reader calls them -> the column's name


def _parse_row(
    cells: dict[str, str], topics: Callable[[str], tuple[str, ...]]
) -> tuple[str, str | None, tuple[str, ...] | None, str | None]:
    address = normalize(_from_spreadsheet(cells.get("email", "")))
    status = check_status(cells["status"]) if cells.get("status", "").strip() else None
    themes = topics(cells["themes"]) if "themes" in cells else None
    name = check_name(_from_spreadsheet(cells.get("name", ""))) or None  # empty: kept
    return address, name, themes, status


def phrase_cells(cells: dict[str, str]) -> tuple[str | None, str | None] | None:
    """The ``watch`` and ``mute`` cells of a row, checked (None: no such column)."""
    if "watch" not in cells and "mute" not in cells:
        return None
    try:
        return tuple(  # type: ignore[return-value]
            check_phrases(_from_spreadsheet(cells[c]), c) if c in cells else None
            for c in ("watch", "mute")
        )
    except PhraseError as exc:
        raise SubscriberError(exc.message) from None


def _store_rows(tx: Tx, rows: list[Row], report: ImportReport) -> None:
    first_line: dict[str, int] = {}
    existing = stored.by_keys(tx, {address.lower() for _, address, _, _, _ in rows})
    fresh: list[NewSubscriber] = []
    changes: list[tuple[int, dict[str, object]]] = []
    for line, address, name, themes, status in rows:
        key = address.lower()
        if key in first_line:
            report.notes.append((line, f"same address as line {first_line[key]}; this row ignored"))
            continue
        first_line[key] = line
        sub = existing.get(key)
        if sub is None:
            fresh.append(new_subscriber(address, name or "", themes or (), status))
            report.added += 1
            continue
        outcome, changed = changes_of(sub, name, themes, status, reactivate=False)
        changes.append((sub.id, changed))
        if outcome == "kept":
            report.notes.append((line, f"{address} unsubscribed; not reactivated"))
            outcome = "unchanged"
        setattr(report, outcome, getattr(report, outcome) + 1)
    stored.change(tx, changes)
    stored.add_many(tx, fresh)  # values checked above


# A cell a spreadsheet would run as a formula (=, +, -, @; a tab or CR before one) goes
# out behind an apostrophe, as spreadsheets expect; so does one that starts with an
# apostrophe, so that import takes exactly one off and gets back what was stored.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def spreadsheet_safe(cell: str) -> str:
    """``cell`` as a spreadsheet shows it as text, never runs it (OWASP CSV injection)."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _from_spreadsheet(cell: str) -> str:
    """A cell of an exported file as it was stored (the inverse of spreadsheet_safe)."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START) else cell


def write_csv(tx: Tx, stream: TextIO) -> int:
    """Every subscriber as ``email,name,themes,status``; returns how many. An address or
    a name a spreadsheet would run as a formula is written behind an apostrophe (import
    reads it back as it was)."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([*CSV_FIELDS, *feedback_columns.NAMES])
    marks = feedback_columns.every_mark(tx)
    n = 0
    for s in stored.every(tx):
        cells = [spreadsheet_safe(s.address), spreadsheet_safe(s.name)]
        watched = [spreadsheet_safe(s.watch), spreadsheet_safe(s.mute)]
        more_less = map(spreadsheet_safe, feedback_columns.cells(marks.get(s.id, ())))
        writer.writerow([*cells, ";".join(s.themes), s.status, *watched, *more_less])
        n += 1
    return n
