"""The record parser: the blocks after the header as papers — each a title line and an
abstract paragraph — streamed with one block of look-ahead, so the work is linear in
the size of the file.

A title with no abstract, a paragraph with no title, a second paragraph (joined to the
abstract), a duplicate title and a title without letters are each a warning
``"file:line: problem"``; a file still being written keeps only its papers whose
abstract ends whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from digest.ingest.header import Block
from digest.ingest.keys import different_abstracts, paper_key
from digest.ingest.links import Link, extract_links
from digest.text import truncate

__all__ = ["Collector", "ParsedPaper", "clip", "collect_papers", "drop_unfinished_last"]


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


_TITLE_MAX = 300


def _short_title(text: str) -> bool:
    """Could be a title: not too long and not ending like a sentence."""
    return len(text) <= _TITLE_MAX and not text.endswith(".")


def _looks_like_title(block: Block) -> bool:
    """A block after a title that is a title itself (so the first had no abstract)."""
    return len(block.lines) == 1 and _short_title(block.text)


def clip(text: str, width: int = 60) -> str:
    """A title or a line as a warning quotes it: cut at a word to ``width`` characters."""
    return truncate(text, width)[0]


@dataclass(frozen=True)
class _Seen:
    line: int
    title: str
    abstract: str


@dataclass
class Collector:
    """Turns (title, abstract) pairs into papers: numbering, duplicates, warnings."""

    name: str
    papers: list[ParsedPaper] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _title: Block | None = None
    _abstract: list[str] = field(default_factory=list)

    def warn(self, line: int, problem: str) -> None:
        self.warnings.append(f"{self.name}:{line}: {problem}")

    def start(self, title: Block) -> None:
        self.finish()
        self._title, self._abstract = title, []

    def add_paragraph(self, block: Block) -> None:
        """An abstract for the current title, or an extra paragraph of its abstract."""
        if self._title is None:
            self.warn(block.line, f"skipped a paragraph with no title: {clip(block.text)!r}")
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
            self.warn(title.line, f"title with no abstract: {clip(text)!r}")
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
                    f"duplicate of the paper on line {first.line} skipped: {clip(text)!r}",
                )
            return
        self._seen[key] = _Seen(title.line, text, abstract)
        if not folded:  # only punctuation: keyed by the title as written (as migration 0004)
            self.warn(
                title.line,
                f"title has no letters or digits: {clip(text)!r}; kept, keyed by the title "
                "as written",
            )
        paper = ParsedPaper(
            text, abstract, extract_links(abstract), len(self.papers), title.line, key
        )
        self.papers.append(paper)


def _with_next(blocks: Iterable[Block]) -> Iterator[tuple[Block, Block | None]]:
    iterator = iter(blocks)
    current = next(iterator, None)
    while current is not None:
        following = next(iterator, None)
        yield current, following
        current = following


def collect_papers(blocks: Iterable[Block], out: Collector) -> None:
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


def _is_title(block: Block, following: Block | None) -> bool:
    """A block where a title is expected; a short sentence is a title only before an abstract."""
    text = block.text
    if len(text) > _TITLE_MAX:
        return False
    if _short_title(text):
        return True
    return following is not None and not _looks_like_title(following)


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


def drop_unfinished_last(out: Collector) -> None:
    """A file still being written ends in the middle of a paper: its last title has no
    abstract yet, or the abstract stops mid-sentence (a short cut-off one even reads as
    a title, leaving the title before it without an abstract). Those trailing papers are
    left for the whole file, which is then recognised as the same dump, grown."""
    while out.papers:
        last = out.papers[-1]
        if last.abstract and _ends_whole(last.abstract):
            return
        out.papers.pop()
        said = f"{out.name}:{last.line}: title with no abstract: {clip(last.title)!r}"
        out.warnings[:] = [w for w in out.warnings if w != said]
        why = (
            "which has no abstract yet"
            if not last.abstract
            else "whose abstract stops mid-sentence"
        )
        out.warn(
            last.line,
            f"skipped the last paper, {why} (is the file still being written?): "
            f"{clip(last.title)!r}",
        )
