"""An issue's letter in pieces, and a reader's letter joined from them.

The marked letter (mail/assembly.py renders it, with a marker around each section and
paper and where For you goes) is cut at its markers into quoted-printable pieces, each
encoded once (``cut_letter``; the For-you sheet: ``cut_sheet``), and a reader's part is
a join of those pieces for their view (``join``): For you from the sheet with their
notes, then the sections without what they muted or For you shows, each section's papers
in the reader's order. Joining with soft line breaks adds nothing to the decoded text;
the pieces that hold the unsubscribe token are cut there (``Piece``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from digest.mail.message import PLACEHOLDER
from digest.mail.message import quoted_printable as qp

FORMAT = 1  # of the stored pieces
SOFT = b"=\r\n"  # a quoted-printable soft line break: joins pieces, adds nothing


def marker_of(nonce: str, *, html: bool) -> Callable[..., str]:
    def mark(kind: str, ident: str = "") -> str:
        text = f"{nonce}:{kind}:{ident}"
        return Markup(f"<!--{text}-->") if html else f"\x00{text}\x00"

    return mark


def pattern(nonce: str) -> re.Pattern[str]:
    return re.compile(rf"(?:<!--|\x00){nonce}:([a-z/-]+):([^>\x00]*?)(?:-->|\x00)")


def strip(marked: str, nonce: str) -> str:
    return pattern(nonce).sub("", marked)


# --------------------------------------------------------------------------- cutting

# A piece: quoted-printable bytes, or (the few that hold the unsubscribe token) a tuple
# of them, the token going between each two.
Piece = bytes | tuple[bytes, ...]


def _piece(text: str) -> Piece:
    parts = text.split(PLACEHOLDER)
    return qp(text) if len(parts) == 1 else tuple(qp(part) for part in parts)


class _Parts:
    """Pieces joined with soft line breaks, cut where the token goes."""

    def __init__(self) -> None:
        self.segments: list[bytes] = []
        self.current: list[bytes] = []

    def add(self, piece: Piece) -> None:
        if isinstance(piece, bytes):
            if piece:
                self.current.append(piece)
            return
        first, *middle, last = piece
        self.current.append(first)
        self.segments.append(SOFT.join(self.current) + SOFT)
        self.segments += (SOFT + p + SOFT for p in middle)
        self.current = [SOFT + last]

    def done(self) -> tuple[bytes, ...]:
        return (*self.segments, SOFT.join(self.current))


@dataclass(frozen=True)
class _Section:
    brief: bool
    items: tuple[tuple[str, Piece], ...]  # ("", piece) text, (anchor, piece) a paper
    empty: bool = False  # what a letter with no paper says instead ("No new papers")

    @property
    def whole(self) -> Piece:
        """The section as its letter shows it (nothing taken out)."""
        if any(isinstance(p, tuple) for _, p in self.items):
            return ()  # holds the token: taken piece by piece
        return SOFT.join(p for _, p in self.items if isinstance(p, bytes) and p)

    @property
    def papers(self) -> frozenset[str]:
        return frozenset(a for a, _ in self.items if a)


@dataclass(frozen=True)
class Cut:
    """One part (html or text) of a variant's letter, in pieces."""

    head: Piece  # up to where For you goes
    body: tuple[_Section | Piece, ...]  # sections and the text between them
    papers: tuple[str, ...]  # anchors of the papers it shows, in order

    @functools.cached_property
    def parts(self) -> tuple[tuple[_Section | Piece, Piece, frozenset[str]], ...]:
        """Each part of the body with its whole bytes and its papers, worked out once."""
        return tuple(
            (p, p.whole, p.papers) if isinstance(p, _Section) else (p, p, frozenset())
            for p in self.body
        )


def cut_letter(marked: str, nonce: str) -> Cut:
    tokens = pattern(nonce).split(marked)
    head, rest = tokens[0], tokens[1:]
    body: list[_Section | Piece] = []
    papers: list[str] = []
    section: list[tuple[str, Piece]] | None = None
    brief = False
    since, seen = 0, False  # where the sections began; whether any was seen
    started = False  # the For-you mark was seen: what follows is the body
    before: list[str] = [head]
    for i in range(0, len(rest), 3):
        kind, ident, text = rest[i], rest[i + 1], rest[i + 2]
        if not started:
            if kind == "for-you":
                started = True
                body.append(_piece(text))
            else:
                before.append(text)
            continue
        if kind == "sections":
            since, seen = len(body), False
            body.append(_piece(text))
        elif kind == "/sections":
            if not seen and section is None:  # the letter's "no paper" words
                words = tuple(("", p) for p in body[since:] if isinstance(p, (bytes, tuple)))
                body[since:] = [_Section(False, words, empty=True)]
            body.append(_piece(text))
        elif kind == "section":
            seen = True
            section, brief = [("", _piece(text))], ident.endswith(":brief")
        elif kind == "paper":
            papers.append(ident)
            if section is not None:
                section.append((ident, _piece(text)))
            else:  # a paper outside any section (a template that has none)
                body.append(_Section(True, ((ident, _piece(text)),)))
        elif kind == "/section" and section is not None:
            body.append(_Section(brief, tuple(section)))
            section = None
            body.append(_piece(text))
        elif section is not None:  # "/paper": text between papers, or a section's tail
            section.append(("", _piece(text)))
        else:
            body.append(_piece(text))
    return Cut(_piece("".join(before)), tuple(body), tuple(papers))


@dataclass(frozen=True)
class Sheet:
    """The For-you block's pieces: its heading, and each paper around its note."""

    head: Piece
    papers: dict[str, tuple[Piece, Piece]]


def cut_sheet(marked: str, nonce: str) -> Sheet:
    tokens = pattern(nonce).split(marked)
    head: Piece = b""
    papers: dict[str, tuple[Piece, Piece]] = {}
    current, before = "", ""
    rest = tokens[1:]
    for i in range(0, len(rest), 3):
        kind, ident, text = rest[i], rest[i + 1], rest[i + 2]
        if kind == "fy-head":
            head = _piece(text)
        elif kind == "fy-paper":
            current, before = ident, text
        elif kind == "note" and current:
            papers[current] = (_piece(before), _piece(text))
            current = ""
    return Sheet(head, papers)


def join(
    cut: Cut,
    sheet: Sheet,
    for_you: Sequence[tuple[str, str]],
    gone: set[str] | frozenset[str],
    note: Callable[[str], bytes],
    rank: dict[str, int] | None = None,
) -> tuple[bytes, ...]:
    """The part for one view, cut where the token goes (join with the token); ``rank``:
    where each paper goes in its section (none: where the letter has it)."""
    out = _Parts()
    out.add(cut.head)
    entries = [(a, n) for a, n in for_you if a in sheet.papers]
    if entries:
        out.add(sheet.head)
        for anchor, why in entries:
            before, after = sheet.papers[anchor]
            out.add(before)
            out.add(note(why))
            out.add(after)
    for part, whole, papers in cut.parts:
        if not isinstance(part, _Section):
            out.add(part)
        elif part.empty and entries:
            continue  # no paper of their topics, but some For you
        elif whole and not (papers & gone) and not (rank and len(papers) > 1):
            out.add(whole)
        elif papers and papers <= gone and not part.brief:
            continue  # every paper of the section went: so does its heading
        else:
            items = [(a, p) for a, p in part.items if not a or a not in gone]
            for _, piece in _reordered(items, rank) if rank else items:
                out.add(piece)
    return out.done()


def _reordered(items: list[tuple[str, Piece]], rank: dict[str, int]) -> list[tuple[str, Piece]]:
    """A section's items with its papers in the reader's order (the text between them
    stays where it is)."""
    slots = [n for n, (a, _) in enumerate(items) if a]
    papers = sorted((items[n] for n in slots), key=lambda item: rank.get(item[0], len(rank)))
    out = list(items)
    for n, item in zip(slots, papers, strict=True):
        out[n] = item
    return out


def html_note(note: str) -> bytes:
    return qp(str(escape(_printable(note))))


def text_note(note: str) -> bytes:
    return qp(_printable(note))


def _printable(note: str) -> str:
    return " ".join("".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in note).split())
