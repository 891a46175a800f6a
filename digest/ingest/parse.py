"""Parsing one dump file (a text copy of a papers page) into a Listing: the entry point
of the parser, and the check that the file has the shape of a listing.

A dump is UTF-8 text: a few boilerplate header lines, a listing date without a
year (``Mar 14``), then papers, each a title line and an abstract paragraph,
all separated by blank lines. Real dumps are messier, so the parser is
tolerant: it accepts any line ending, a BOM, invalid UTF-8 (replaced), stray
control bytes, wrapped abstracts, titles without abstracts and unknown header
lines, and reports each oddity as a warning ``"file:line: problem"``. It raises
:class:`~digest.errors.DumpError` only when nothing usable is in the file.

The steps, one module each: the text cleaning (`decode`), the blocks and the header
with the listing date (`header`: format detection), the titles and abstracts
(`papers`: the record parser). The text is read once and the blocks are streamed,
so the work is linear in the size of the file.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import date, datetime

from digest.errors import DumpError, printable
from digest.ingest.decode import decode
from digest.ingest.header import Header, iter_blocks, resolve_date, split_header
from digest.ingest.papers import (
    Collector,
    ParsedPaper,
    clip,
    collect_papers,
    drop_unfinished_last,
)

__all__ = ["MIN_ABSTRACT_CHARS", "Listing", "ParsedPaper", "parse_bytes"]

MIN_ABSTRACT_CHARS = 100  # about 15-20 words; real abstracts are 600-2,000 characters
_WHOLE_HINT = "a dump is the text of the papers page, saved whole"


@dataclass
class Listing:
    path: str
    content_hash: str  # sha256 hex of the raw bytes
    listing_date: date | None
    papers: list[ParsedPaper]
    warnings: list[str] = field(default_factory=list)  # one line each: "file:line: problem"


def _listing_date(header: Header, mtime: datetime, out: Collector, first: int) -> date | None:
    for number, line in header.unknown:
        out.warn(number, f"skipped an unexpected header line: {clip(line)!r}")
    if header.date_parts is None:
        out.warn(first, "no listing date found before the first paper")
        return None
    resolved = resolve_date(header.date_parts, mtime)
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
    out = Collector(printable(name))  # warnings are one line, whatever the file's name
    text = decode(data, name, out.warnings)
    header, blocks = split_header(iter_blocks(text))
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
    collect_papers(itertools.chain([first], blocks), out)
    if not out.papers:
        raise DumpError(name, "no papers found after the header", line=first.line)
    titles = len(out.papers)
    if not settled:
        drop_unfinished_last(out)
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
