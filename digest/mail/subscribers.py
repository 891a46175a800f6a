"""The subscriber list: add, remove, list, import and export (CSV), unsubscribe.

Addresses are validated with email-validator (no DNS look-up) and folded: the domain's
case, surrounding spaces and the case of the whole address do not make a second
subscriber (the first spelling is kept). Unsubscribing is sticky: only an explicit
``add --resubscribe`` brings someone back; imports and configured recipients never do.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import functools
import hmac
import io
import itertools
import logging
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TextIO

from digest import addresses
from digest.errors import DigestError
from digest.mail import feedback_columns
from digest.mail.message import TOKEN_RE
from digest.state import outbox
from digest.state import subscribers as stored
from digest.state.handles import Sessions, Tx, reading, writing
from digest.state.states import SubscriberStatus
from digest.state.subscribers import NewSubscriber, SubscriberRow
from digest.urls import slugify

log = logging.getLogger(__name__)

STATUSES = tuple(s.value for s in SubscriberStatus)  # plain strings (click shows them)
CSV_FIELDS = ("email", "name", "themes", "status")
MAX_NAME = addresses.MAX_NAME


class SubscriberError(DigestError):
    """An address, a theme list, a status or a CSV file is not acceptable."""


@dataclass(frozen=True)
class SubscriberInfo:
    """A subscriber as the CLI and the web server see it (no token)."""

    address: str
    name: str
    status: str
    themes: tuple[str, ...]
    bounce_count: int
    created_at: datetime


@dataclass(frozen=True)
class Unsubscribed:
    address: str
    already: bool  # was unsubscribed before this call


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, problem)
    notes: list[tuple[int, str]] = field(default_factory=list)  # (line, remark)


def normalize(raw: str) -> str:
    """The address validated and normalised (the rule of `digest.addresses`)."""
    try:
        return addresses.normalize(raw)
    except addresses.AddressError as exc:
        raise SubscriberError(exc.message) from None


def check_name(raw: str) -> str:
    """A subscriber's name as it may go into a To header (`digest.addresses`)."""
    try:
        return addresses.check_name(raw)
    except addresses.AddressError as exc:
        raise SubscriberError(exc.message) from None


def parse_themes(raw: str | Iterable[str]) -> tuple[str, ...]:
    """Theme names or slugs (";"-separated in a string) as slugs; () means every theme."""
    parts = raw.split(";") if isinstance(raw, str) else raw
    slugs = [slugify(p) for p in (p.strip() for p in parts) if p]
    return tuple(dict.fromkeys(slugs))


Choices = Sequence[tuple[str, str]]  # (slug, name) of every theme a subscriber may choose


def resolve_themes(
    raw: str | Iterable[str], choices: Choices, aliases: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """Topic names or slugs (";"-separated in a string) as the slugs of ``choices``, an
    old slug (``aliases``: old slug -> slug) as the slug that replaced it; an unknown one
    is refused with the closest known name. () means every topic."""
    by_key: dict[str, str] = {}
    for slug, name in choices:
        by_key.setdefault(slug, slug)
        by_key.setdefault(name.casefold(), slug)
        by_key.setdefault(slugify(name), slug)
    for old, slug in (aliases or {}).items():
        by_key.setdefault(old, slug)
    parts = raw.split(";") if isinstance(raw, str) else raw
    slugs = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        found = by_key.get(part.casefold()) or by_key.get(slugify(part))
        if found is None:
            names = {n.casefold(): n for _, n in choices} | {s: n for s, n in choices}
            close = difflib.get_close_matches(part.casefold(), list(names), 1, 0.5)
            hint = f"; did you mean {names[close[0]]!r}?" if close else ""
            raise SubscriberError(f"unknown topic {part!r}{hint} (see `digest areas`)")
        slugs.append(found)
    return tuple(dict.fromkeys(slugs))


def _check_status(status: str) -> str:
    status = status.strip().lower()
    if status not in STATUSES:
        raise SubscriberError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    return status


def _info(s: SubscriberRow) -> SubscriberInfo:
    return SubscriberInfo(s.address, s.name, s.status, s.themes, s.bounce_count, s.created_at)


def new_token() -> str:
    """An unguessable token for a link (256 random bits, URL-safe), never beginning with
    "-": pasted after `digest unsubscribe`, it would be read as an option."""
    while (token := secrets.token_urlsafe(32)).startswith("-"):
        pass
    return token


def new_subscriber(
    address: str, name: str = "", themes: Sequence[str] = (), status: str | None = None
) -> NewSubscriber:
    status = status or SubscriberStatus.ACTIVE
    return NewSubscriber(address, new_token(), name, tuple(themes), status)


def _apply(
    sub: SubscriberRow,
    name: str | None,
    themes: Sequence[str] | None,
    status: str | None,
    *,
    reactivate: bool,
) -> tuple[str, dict[str, object]]:
    """How an existing subscriber changes: "updated", "unchanged" or "kept", and the
    columns to set."""
    changes: dict[str, object] = {}
    if name is not None and name != sub.name:
        changes["name"] = name
    if themes is not None and tuple(themes) != sub.themes:
        changes["themes"] = list(themes)
    if (
        status == SubscriberStatus.ACTIVE
        and sub.status == SubscriberStatus.UNSUBSCRIBED
        and not reactivate
    ):
        return "kept", changes
    if status is not None and status != sub.status:
        changes["status"] = status
        changes["unsubscribed_at"] = (
            datetime.now(UTC) if status == SubscriberStatus.UNSUBSCRIBED else None
        )
        if status == SubscriberStatus.ACTIVE:
            changes["bounce_count"] = 0
    return ("updated" if changes else "unchanged"), changes


def upsert(
    tx: Tx,
    address: str,
    *,
    name: str | None = None,
    themes: Sequence[str] | None = None,
    status: str | None = None,
    reactivate: bool = False,
) -> str:
    """Add or update one subscriber. Returns "added", "updated", "unchanged" or "kept"
    (unsubscribed, not reactivated)."""
    if name is not None:
        name = check_name(name)
    sub = stored.by_key(tx, address.lower())
    if sub is None:
        stored.add(tx, [new_subscriber(address, name or "", themes or (), status)])
        return "added"
    outcome, changes = _apply(sub, name, themes, status, reactivate=reactivate)
    stored.change(tx, [(sub.id, changes)])
    return outcome


def sync_configured(tx: Tx, addresses: Iterable[str]) -> int:
    """Configured recipients become active subscribers when new; existing ones (even
    unsubscribed or bounced) are left as they are. Returns how many were added."""
    keys = {a.lower(): a for a in addresses}
    if not keys:
        return 0
    known = stored.known_keys(tx, list(keys))
    fresh = [new_subscriber(a) for k, a in keys.items() if k not in known]
    stored.add(tx, fresh)
    return len(fresh)


def receiving(tx: Tx, configured: Sequence[str], shown: int = 5) -> tuple[int, list[str]]:
    """How many would receive the next digest, and the first `shown` of them, as
    would_receive orders them, without reading the whole list."""
    keys = [a.lower() for a in configured]
    status = stored.statuses(tx, keys)
    first = [a for a in configured if status.get(a.lower(), "active") == "active"]
    count, rest = stored.other_active(tx, keys, shown)
    return len(first) + count, [*first[:shown], *rest][:shown]


def would_receive(tx: Tx, configured: Sequence[str]) -> list[str]:
    """The configured addresses not unsubscribed or bounced, then the other active
    subscribers: who the next digest goes to (before theme choices)."""
    status = stored.statuses(tx)
    on = SubscriberStatus.ACTIVE
    out = [a for a in configured if status.get(a.lower(), on) == on]
    seen = {a.lower() for a in out}
    out += [a for _, a, _ in stored.active(tx) if a.lower() not in seen]
    return out


def unsubscribe(tx: Tx, token: str) -> Unsubscribed | None:
    """Unsubscribe the owner of ``token`` at once; idempotent. None for an unknown token.
    Pending deliveries to them are skipped. The token is never logged."""
    sub = by_token(tx, token)
    if sub is None:
        return None
    if sub.status == SubscriberStatus.UNSUBSCRIBED:
        return Unsubscribed(sub.address, already=True)
    left = {"status": SubscriberStatus.UNSUBSCRIBED, "unsubscribed_at": datetime.now(UTC)}
    stored.change(tx, [(sub.id, left)])
    outbox.skip_pending(tx, sub.id, "subscriber unsubscribed")
    log.info("unsubscribed subscriber #%d", sub.id)
    return Unsubscribed(sub.address, already=False)


# --------------------------------------------------------------------------- CSV


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
    for row in rows:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        try:
            parsed.append((line, *_parse_row(dict(zip(header, row, strict=False)), topics)))
            if len(row) > len(header):
                report.notes.append((line, "more fields than the header; extra ignored"))
        except SubscriberError as exc:
            report.errors.append((line, exc.message))
    _store_rows(tx, parsed, report)
    report.notes.sort(key=lambda note: note[0])
    return report


_COLUMN_NAMES = {"topics": "themes"}  # what a reader calls them -> the column's name


def _parse_row(
    cells: dict[str, str], topics: Callable[[str], tuple[str, ...]]
) -> tuple[str, str | None, tuple[str, ...] | None, str | None]:
    address = normalize(_from_spreadsheet(cells.get("email", "")))
    status = _check_status(cells["status"]) if cells.get("status", "").strip() else None
    themes = topics(cells["themes"]) if "themes" in cells else None
    name = check_name(_from_spreadsheet(cells.get("name", ""))) or None  # empty: kept
    return address, name, themes, status


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
        outcome, changed = _apply(sub, name, themes, status, reactivate=False)
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
        more_less = map(spreadsheet_safe, feedback_columns.cells(marks.get(s.id, ())))
        writer.writerow([*cells, ";".join(s.themes), s.status, *more_less])
        n += 1
    return n


# --------------------------------------------------------------------------- the book


class SubscriberBook:
    """The subscriber list over a database: each call is one transaction. The CLI and
    the web server use this."""

    def __init__(
        self,
        sessions: Sessions,
        choices: Callable[[], Choices] | None = None,
        aliases: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.sessions = sessions
        self.choices = choices  # what --topics may name; None: anything goes
        self.aliases = aliases  # old slugs -> the slugs that replaced them

    def _slugs(self, themes: str | Sequence[str]) -> tuple[str, ...]:
        if self.choices is None:
            return parse_themes(themes)
        return resolve_themes(themes, self.choices(), self.aliases() if self.aliases else None)

    def _tx(self) -> AbstractContextManager[Tx]:
        return writing(self.sessions)  # waits its turn for the write lock (SQLite)

    def add(
        self,
        address: str,
        *,
        name: str | None = None,
        themes: str | Sequence[str] | None = None,
        status: str | None = None,
        resubscribe: bool = False,
    ) -> str:
        """Add or update; returns "added", "updated", "unchanged" or "kept"."""
        addr = normalize(address)
        slugs = self._slugs(themes) if themes is not None else None
        st = _check_status(status) if status else (SubscriberStatus.ACTIVE if resubscribe else None)
        with self._tx() as s:
            return upsert(s, addr, name=name, themes=slugs, status=st, reactivate=resubscribe)

    def status_of(self, address: str) -> str | None:
        """The status of a subscriber ("active", "unsubscribed", "bounced"), or None."""
        key = normalize(address).lower()
        with reading(self.sessions) as s:
            return stored.status_of(s, key)

    def remove(self, address: str) -> bool:
        """Forget a subscriber and their deliveries; False when unknown."""
        key = normalize(address).lower()
        with self._tx() as s:
            return stored.remove(s, key)

    def list(self, status: str | None = None) -> list[SubscriberInfo]:
        wanted = _check_status(status) if status else None
        with reading(self.sessions) as s:
            return [_info(sub) for sub in stored.listing(s, wanted)]

    def import_csv(self, stream: TextIO) -> ImportReport:
        """Unknown topics are refused row by row, as `add` refuses them."""
        topics: Callable[[str], tuple[str, ...]] = parse_themes
        if self.choices is not None:
            choices, aliases = self.choices(), self.aliases() if self.aliases else None
            topics = functools.lru_cache(maxsize=4096)(
                lambda cell: resolve_themes(cell, choices, aliases)
            )  # a few distinct cells, however many rows
        with self._tx() as s:
            return read_csv(s, stream, topics)

    def export_csv(self, stream: TextIO) -> int:
        with reading(self.sessions) as s:
            return write_csv(s, stream)

    def unsubscribe(self, token: str) -> Unsubscribed | None:
        with self._tx() as s:
            return unsubscribe(s, token)

    def lookup(self, token: str) -> SubscriberInfo | None:
        with reading(self.sessions) as s:
            sub = by_token(s, token)
            return _info(sub) if sub is not None else None

    def choose_themes(self, token: str, themes: Sequence[str]) -> SubscriberInfo | None:
        """Set the themes of the owner of ``token``; unknown ones are refused."""
        slugs = self._slugs(themes)
        with self._tx() as s:
            return choose_themes(s, token, slugs)


# --------------------------------------------------------------------------- by token


def by_token(tx: Tx, token: str) -> SubscriberRow | None:
    """The subscriber owning ``token`` (compared in constant time), or None."""
    if not TOKEN_RE.fullmatch(token or ""):
        return None
    sub = stored.by_token(tx, token)
    if sub is None or not hmac.compare_digest(sub.token.encode(), token.encode()):
        return None
    return sub


def choose_themes(tx: Tx, token: str, themes: Sequence[str]) -> SubscriberInfo | None:
    """Set the themes the owner of ``token`` receives (() = every theme)."""
    sub = by_token(tx, token)
    if sub is None:
        return None
    chosen = parse_themes(themes)
    stored.change(tx, [(sub.id, {"themes": list(chosen)})])
    log.info("subscriber #%d chose %d theme(s)", sub.id, len(chosen))
    return _info(replace(sub, themes=chosen))
