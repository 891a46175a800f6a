"""Parsing one dump file (a text copy of a papers page) into a Listing.

A dump is UTF-8 text: a few boilerplate header lines, a listing date without a
year (``Mar 14``), then papers, each a title line and an abstract paragraph,
all separated by blank lines. Real dumps are messier, so the parser is
tolerant: it accepts any line ending, a BOM, invalid UTF-8 (replaced), stray
control bytes, wrapped abstracts, titles without abstracts and unknown header
lines, and reports each oddity as a warning ``"file:line: problem"``. It raises
:class:`~digest.errors.DumpError` only when nothing usable is in the file.

The text is read once and the blocks (runs of non-blank lines) are streamed
through a small state machine with one block of look-ahead, so the work is
linear in the size of the file.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from digest.errors import DumpError, printable
from digest.ingest.keys import different_abstracts, paper_key
from digest.ingest.links import Link, LinkKind, extract_links

__all__ = [
    "DumpError",
    "Link",
    "LinkKind",
    "Listing",
    "ParsedPaper",
    "extract_links",
    "parse_bytes",
]


@dataclass(frozen=True)
class ParsedPaper:
    title: str
    abstract: str  # "" when the dump had a title with no abstract
    links: tuple[Link, ...]
    position: int  # 0-based order in the dump
    line: int  # 1-based line of the title in the file
    # paper_key(title) (the title as written when that is empty: only punctuation), kept
    # from parsing so storing need not fold again
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", paper_key(self.title))


@dataclass
class Listing:
    path: str
    content_hash: str  # sha256 hex of the raw bytes
    listing_date: date | None
    papers: list[ParsedPaper]
    warnings: list[str] = field(default_factory=list)  # one line each: "file:line: problem"


# --- listing dates ---------------------------------------------------------------------------

_MONTH_NAMES = (
    "january february march april may june july august september october november december"
)
_MONTHS = {
    **{name: number for number, name in enumerate(_MONTH_NAMES.split(), start=1)},
    **{name[:3]: number for number, name in enumerate(_MONTH_NAMES.split(), start=1)},
    "sept": 9,
}
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_DATE_RES = (
    re.compile(rf"([a-z]+)\.?\s+{_DAY}(?:,?\s+(\d{{4}}))?[.,]?", re.IGNORECASE),
    re.compile(rf"{_DAY}\s+([a-z]+)\.?(?:,?\s+(\d{{4}}))?[.,]?", re.IGNORECASE),
)


def _date_parts(line: str) -> tuple[int, int, int | None] | None:
    """(month, day, year or None) when ``line`` is a listing date such as ``Mar 14``."""
    for index, pattern in enumerate(_DATE_RES):
        match = pattern.fullmatch(line.strip())
        if match is None:
            continue
        month_name, day = (match[1], match[2]) if index == 0 else (match[2], match[1])
        month = _MONTHS.get(month_name.lower())
        if month is not None:
            return month, int(day), int(match[3]) if match[3] else None
    return None


def _resolve_date(parts: tuple[int, int, int | None], mtime: datetime) -> date | None:
    """The most recent (month, day) not after ``mtime``; None when no such date exists."""
    month, day, year = parts
    years = [year] if year is not None else range(mtime.year, mtime.year - 9, -1)
    for candidate in years:
        try:
            resolved = date(candidate, month, day)
        except ValueError:
            continue
        if year is not None or resolved <= mtime.date():
            return resolved
    return None


# --- decoding --------------------------------------------------------------------------------

_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")
_INVALID_RE = re.compile(r"[\udc80-\udcff]+")
# Bidirectional controls (embeddings, overrides, isolates, marks): in a title they can make
# text display in another order than it is stored ("gnp.exe"), so no output gets them.
_BIDI_RE = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]+")
_MAX_CONTROL_SHARE = 0.10
_MAX_INVALID_SHARE = 0.30
_BINARY_HINT = "a dump must be UTF-8 text saved from the papers page"


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _replace_runs(text: str, pattern: re.Pattern[str], replacement: str) -> tuple[str, int, int]:
    """(new text, characters replaced, line of the first one); linear in ``len(text)``."""
    first = pattern.search(text)
    if first is None:
        return text, 0, 0
    count = sum(match.end() - match.start() for match in pattern.finditer(text, first.start()))
    return pattern.sub(replacement, text), count, _line_of(text, first.start())


def _check_binary(data: bytes, name: str) -> None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DumpError(name, "looks like UTF-16 text", hint="save the dump as UTF-8")
    share = (len(data) - len(data.translate(None, _CONTROL_BYTES))) / len(data)
    if share >= _MAX_CONTROL_SHARE:
        raise DumpError(name, f"looks binary ({share:.0%} control bytes)", hint=_BINARY_HINT)


def _decode(data: bytes, name: str, warnings: list[str]) -> str:
    """The text of ``data`` with one kind of line break; bad bytes replaced and reported."""
    if not data:
        raise DumpError(name, "empty file", hint="was it saved before the copy finished?")
    _check_binary(data, name)
    text = data.decode("utf-8", "surrogateescape").replace("\ufeff", "")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text, invalid, line = _replace_runs(text, _INVALID_RE, "\ufffd")
    if invalid / len(data) >= _MAX_INVALID_SHARE:
        share = invalid / len(data)
        raise DumpError(name, f"looks binary ({share:.0%} bytes not UTF-8)", hint=_BINARY_HINT)
    if invalid:
        warnings.append(
            f"{name}:{line}: replaced {invalid} invalid UTF-8 byte(s) with U+FFFD "
            f"(first on line {line})"
        )
    text, controls, line = _replace_runs(text, _CONTROL_RE, "")
    if controls:
        warnings.append(f"{name}:{line}: removed {controls} control byte(s) (first on line {line})")
    text, bidi, line = _replace_runs(text, _BIDI_RE, "")
    if bidi:
        warnings.append(
            f"{name}:{line}: removed {bidi} bidirectional control character(s) "
            f"(first on line {line})"
        )
    if not text.strip():
        raise DumpError(name, "empty file (only blank lines)")
    return text


# --- blocks and the header -------------------------------------------------------------------

_HEADER_KEYS = frozenset(
    paper_key(line)
    for line in (
        "new",
        "Get trending papers in your email inbox!",
        "Subscribe",
        "Daily Papers",
        "byAK and the research community",
    )
)
_HEADER_MAX_BLOCKS = 12
_HEADER_MAX_LINE = 200


@dataclass
class _Block:
    """A run of non-blank lines: the 1-based number of its first line and the lines, stripped."""

    line: int
    lines: list[str]

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.lines).split())


def _iter_blocks(text: str) -> Iterator[_Block]:
    lines: list[str] = []
    start = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.strip()
        if stripped:
            if not lines:
                start = number
            lines.append(stripped)
        elif lines:
            yield _Block(start, lines)
            lines = []
    if lines:
        yield _Block(start, lines)


@dataclass
class _Header:
    date_parts: tuple[int, int, int | None] | None = None
    date_line: int = 0
    last_line: int = 0  # last line taken as header; 0 when there was none
    unknown: list[tuple[int, str]] = field(default_factory=list)


def _header_lines(buffered: list[_Block]) -> Iterator[tuple[int, int, str]]:
    """(block index, line index, text) of the lines that may still belong to the header."""
    for block_index, block in enumerate(buffered):
        for line_index, line in enumerate(block.lines):
            if len(line) > _HEADER_MAX_LINE:
                return
            yield block_index, line_index, line


def _locate_header(buffered: list[_Block]) -> tuple[_Header, tuple[int, int]]:
    """The header and where the papers start (block index, line index) in ``buffered``."""
    header = _Header()
    unknown: list[tuple[int, str]] = []
    for block_index, line_index, line in _header_lines(buffered):
        number = buffered[block_index].line + line_index
        parts = _date_parts(line)
        if parts is not None:
            header.date_parts, header.date_line, header.last_line = parts, number, number
            header.unknown = unknown
            return header, (block_index, line_index + 1)
        if paper_key(line) not in _HEADER_KEYS:
            unknown.append((number, line))
    return _header_without_date(buffered)


def _header_without_date(buffered: list[_Block]) -> tuple[_Header, tuple[int, int]]:
    """No date: the header is the leading known boilerplate, if any."""
    header = _Header()
    for block_index, line_index, line in _header_lines(buffered):
        if paper_key(line) not in _HEADER_KEYS:
            return header, (block_index, line_index)
        header.last_line = buffered[block_index].line + line_index
    return header, (len(buffered), 0)


def _split_header(blocks: Iterator[_Block]) -> tuple[_Header, Iterator[_Block]]:
    """Read the header off the front of ``blocks``; returns it and the remaining blocks."""
    buffered: list[_Block] = []
    for block in blocks:
        buffered.append(block)
        too_long = any(len(line) > _HEADER_MAX_LINE for line in block.lines)
        has_date = any(len(line) <= _HEADER_MAX_LINE and _date_parts(line) for line in block.lines)
        if too_long or has_date or len(buffered) >= _HEADER_MAX_BLOCKS:
            break
    header, (block_index, line_index) = _locate_header(buffered)
    rest = buffered[block_index:]
    if rest and line_index:
        first = rest[0]
        tail = first.lines[line_index:]
        rest = ([_Block(first.line + line_index, tail)] if tail else []) + rest[1:]
    return header, itertools.chain(rest, blocks)


# --- papers ----------------------------------------------------------------------------------

_TITLE_MAX = 300


def _short_title(text: str) -> bool:
    """Could be a title: not too long and not ending like a sentence."""
    return len(text) <= _TITLE_MAX and not text.endswith(".")


def _looks_like_title(block: _Block) -> bool:
    """A block after a title that is a title itself (so the first had no abstract)."""
    return len(block.lines) == 1 and _short_title(block.text)


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class _Seen:
    line: int
    title: str
    abstract: str


@dataclass
class _Collector:
    """Turns (title, abstract) pairs into papers: numbering, duplicates, warnings."""

    name: str
    papers: list[ParsedPaper] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _title: _Block | None = None
    _abstract: list[str] = field(default_factory=list)

    def warn(self, line: int, problem: str) -> None:
        self.warnings.append(f"{self.name}:{line}: {problem}")

    def start(self, title: _Block) -> None:
        self.finish()
        self._title, self._abstract = title, []

    def add_paragraph(self, block: _Block) -> None:
        """An abstract for the current title, or an extra paragraph of its abstract."""
        if self._title is None:
            self.warn(block.line, f"skipped a paragraph with no title: {_clip(block.text)!r}")
            return
        if self._abstract:
            self.warn(block.line, "joined a second paragraph to the abstract above")
        self._abstract.append(block.text)

    def finish(self) -> None:
        title, self._title = self._title, None
        if title is None:
            return
        text, folded = title.text, paper_key(title.text)
        key = folded or text
        if not self._abstract:
            self.warn(title.line, f"title with no abstract: {_clip(text)!r}")
        abstract = " ".join(self._abstract)
        if key in self._seen:
            first = self._seen[key]
            if different_abstracts(first.abstract, abstract):
                self.warn(
                    title.line,
                    f"{text!r} has the key of {first.title!r} (line {first.line}) but another "
                    "abstract; kept the first",
                )
            else:
                self.warn(
                    title.line,
                    f"duplicate of the paper on line {first.line} skipped: {_clip(text)!r}",
                )
            return
        self._seen[key] = _Seen(title.line, text, abstract)
        if not folded:  # only punctuation: keyed by the title as written (as migration 0004)
            self.warn(
                title.line,
                f"title has no letters or digits: {_clip(text)!r}; kept, keyed by the title "
                "as written",
            )
        paper = ParsedPaper(
            text, abstract, extract_links(abstract), len(self.papers), title.line, key
        )
        self.papers.append(paper)


def _with_next(blocks: Iterable[_Block]) -> Iterator[tuple[_Block, _Block | None]]:
    iterator = iter(blocks)
    current = next(iterator, None)
    while current is not None:
        following = next(iterator, None)
        yield current, following
        current = following


def _collect_papers(blocks: Iterable[_Block], out: _Collector) -> None:
    """Pair titles with abstracts, block by block, with one block of look-ahead."""
    expecting_abstract = False
    for block, following in _with_next(blocks):
        if expecting_abstract and not _looks_like_title(block):
            out.add_paragraph(block)
            expecting_abstract = False
        elif expecting_abstract or _is_title(block, following):
            out.start(block)
            expecting_abstract = True
        else:
            out.add_paragraph(block)
    out.finish()


def _is_title(block: _Block, following: _Block | None) -> bool:
    """A block where a title is expected; a short sentence is a title only before an abstract."""
    text = block.text
    if len(text) > _TITLE_MAX:
        return False
    if _short_title(text):
        return True
    return following is not None and not _looks_like_title(following)


# --- entry points ----------------------------------------------------------------------------


def _listing_date(header: _Header, mtime: datetime, out: _Collector, first: int) -> date | None:
    for number, line in header.unknown:
        out.warn(number, f"skipped an unexpected header line: {_clip(line)!r}")
    if header.date_parts is None:
        out.warn(first, "no listing date found before the first paper")
        return None
    resolved = _resolve_date(header.date_parts, mtime)
    if resolved is None:
        out.warn(header.date_line, "listing date is not a real day of the year")
    return resolved


def parse_bytes(data: bytes, *, name: str, mtime: datetime, settled: bool = False) -> Listing:
    """Parse raw bytes; raises DumpError when nothing usable is in them, or when they do
    not have the shape of a listing (no listing date, no abstracts, abstracts too short
    to be abstracts). A file that may still be growing (``settled`` false) keeps its last
    paper only when that paper's abstract ends whole; a ``settled`` file (unchanged for
    schedule.settle_seconds: the caller knows, the parser reads no clock) is read whole,
    however its last abstract ends."""
    out = _Collector(printable(name))  # warnings are one line, whatever the file's name
    text = _decode(data, name, out.warnings)
    header, blocks = _split_header(_iter_blocks(text))
    first = next(blocks, None)
    if first is None:
        raise DumpError(
            name,
            "no papers found after the header",
            line=header.last_line or None,
            hint="expected a title line and an abstract paragraph after the date",
        )
    if header.date_parts is None:
        raise DumpError(
            name,
            "no listing date (such as 'Mar 14') before the first paper: "
            "this does not look like a papers listing",
            line=first.line,
            hint=_WHOLE_HINT,
        )
    listing_date = _listing_date(header, mtime, out, first.line)
    _collect_papers(itertools.chain([first], blocks), out)
    if not out.papers:
        raise DumpError(name, "no papers found after the header", line=first.line)
    titles = len(out.papers)
    if not settled:
        _drop_unfinished_last(out)
    if not out.papers:
        raise DumpError(
            name,
            f"no abstracts: {titles} title(s), none followed by a whole abstract",
            line=first.line,
            hint="is the file still being written? " + _WHOLE_HINT,
        )
    _check_abstracts(out.papers, name, first.line)
    digest = hashlib.sha256(data).hexdigest()
    return Listing(name, digest, listing_date, out.papers, out.warnings)


# --- the shape of a listing ------------------------------------------------------------------

MIN_ABSTRACT_CHARS = 100  # about 15-20 words; real abstracts are 600-2,000 characters
_WHOLE_HINT = "a dump is the text of the papers page, saved whole"
# How a whole abstract ends: a sentence's end (a closing bracket or quote may follow),
# or a link (code and project pages often close an abstract without a period).
_SENTENCE_ENDS = tuple(".!?…。")
_CLOSERS = "\"'’”)]}>"


def _ends_whole(abstract: str) -> bool:
    """Whether ``abstract`` ends like a whole abstract. Plain string operations that look
    only at its end (no regex search over it: on a long unbroken last word that search
    was quadratic, 264 s for 0.2 MB), so the check is linear in the abstract."""
    if abstract.rstrip(_CLOSERS).endswith(_SENTENCE_ENDS):
        return True
    words = abstract.rsplit(None, 1)
    last = words[-1] if words else ""
    return "://" in last or "www." in last


def _check_abstracts(papers: list[ParsedPaper], name: str, line: int) -> None:
    """A listing is mostly papers with abstracts; raise when it is not."""
    real = sum(1 for p in papers if len(p.abstract) >= MIN_ABSTRACT_CHARS)
    if 2 * real >= len(papers):
        return
    with_any = sum(1 for p in papers if p.abstract)
    if not with_any:
        problem = f"no abstracts: {len(papers)} title(s), none followed by an abstract paragraph"
    else:
        problem = (
            f"abstracts too short to be abstracts: {len(papers) - real} of {len(papers)} "
            f"paper(s) have fewer than {MIN_ABSTRACT_CHARS} characters"
        )
    raise DumpError(name, problem, line=line, hint=_WHOLE_HINT)


def _drop_unfinished_last(out: _Collector) -> None:
    """A file still being written ends in the middle of a paper: its last title has no
    abstract yet, or the abstract stops mid-sentence (a short cut-off one even reads as
    a title, leaving the title before it without an abstract). Those trailing papers are
    left for the whole file, which is then recognised as the same dump, grown."""
    while out.papers:
        last = out.papers[-1]
        if last.abstract and _ends_whole(last.abstract):
            return
        out.papers.pop()
        said = f"{out.name}:{last.line}: title with no abstract: {_clip(last.title)!r}"
        out.warnings[:] = [w for w in out.warnings if w != said]
        why = (
            "which has no abstract yet"
            if not last.abstract
            else "whose abstract stops mid-sentence"
        )
        out.warn(
            last.line,
            f"skipped the last paper, {why} (is the file still being written?): "
            f"{_clip(last.title)!r}",
        )
