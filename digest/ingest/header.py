"""Format detection: a dump's blocks (runs of non-blank lines) and its header — the known
boilerplate lines ("new", "Subscribe", "Daily Papers"…), any unknown ones, and the
listing date without a year (``Mar 14``, ``14 March``, ``Sept. 3rd, 2025``), whose year
is the most recent one that does not put it after the file's mtime.

The header is read off the front of the blocks, at most a few blocks and never a long
line, so a file that is not a listing is not read whole to find out.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from digest.ingest.keys import paper_key

__all__ = [
    "HEADER_KEYS",
    "Block",
    "Header",
    "date_parts",
    "iter_blocks",
    "resolve_date",
    "split_header",
]

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


def date_parts(line: str) -> tuple[int, int, int | None] | None:
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


def resolve_date(parts: tuple[int, int, int | None], mtime: datetime) -> date | None:
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


HEADER_KEYS = frozenset(
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
class Block:
    """A run of non-blank lines: the 1-based number of its first line and the lines, stripped."""

    line: int
    lines: list[str]

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.lines).split())


def iter_blocks(text: str) -> Iterator[Block]:
    lines: list[str] = []
    start = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.strip()
        if stripped:
            if not lines:
                start = number
            lines.append(stripped)
        elif lines:
            yield Block(start, lines)
            lines = []
    if lines:
        yield Block(start, lines)


@dataclass
class Header:
    date_parts: tuple[int, int, int | None] | None = None
    date_line: int = 0
    last_line: int = 0  # last line taken as header; 0 when there was none
    unknown: list[tuple[int, str]] = field(default_factory=list)


def _header_lines(buffered: list[Block]) -> Iterator[tuple[int, int, str]]:
    """(block index, line index, text) of the lines that may still belong to the header."""
    for block_index, block in enumerate(buffered):
        for line_index, line in enumerate(block.lines):
            if len(line) > _HEADER_MAX_LINE:
                return
            yield block_index, line_index, line


def _locate_header(buffered: list[Block]) -> tuple[Header, tuple[int, int]]:
    """The header and where the papers start (block index, line index) in ``buffered``."""
    header = Header()
    unknown: list[tuple[int, str]] = []
    for block_index, line_index, line in _header_lines(buffered):
        number = buffered[block_index].line + line_index
        parts = date_parts(line)
        if parts is not None:
            header.date_parts, header.date_line, header.last_line = parts, number, number
            header.unknown = unknown
            return header, (block_index, line_index + 1)
        if paper_key(line) not in HEADER_KEYS:
            unknown.append((number, line))
    return _header_without_date(buffered)


def _header_without_date(buffered: list[Block]) -> tuple[Header, tuple[int, int]]:
    """No date: the header is the leading known boilerplate, if any."""
    header = Header()
    for block_index, line_index, line in _header_lines(buffered):
        if paper_key(line) not in HEADER_KEYS:
            return header, (block_index, line_index)
        header.last_line = buffered[block_index].line + line_index
    return header, (len(buffered), 0)


def split_header(blocks: Iterator[Block]) -> tuple[Header, Iterator[Block]]:
    """Read the header off the front of ``blocks``; returns it and the remaining blocks."""
    buffered: list[Block] = []
    for block in blocks:
        buffered.append(block)
        too_long = any(len(line) > _HEADER_MAX_LINE for line in block.lines)
        has_date = any(len(line) <= _HEADER_MAX_LINE and date_parts(line) for line in block.lines)
        if too_long or has_date or len(buffered) >= _HEADER_MAX_BLOCKS:
            break
    header, (block_index, line_index) = _locate_header(buffered)
    rest = buffered[block_index:]
    if rest and line_index:
        first = rest[0]
        tail = first.lines[line_index:]
        rest = ([Block(first.line + line_index, tail)] if tail else []) + rest[1:]
    return header, itertools.chain(rest, blocks)
