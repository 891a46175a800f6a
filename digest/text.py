"""Text helpers shared by every stage, one of each: the sentence splitter (`sentences`),
the truncation (`truncate`) and the flattening of outside text onto one line
(`one_line`). Pure; imports nothing of digest."""

from __future__ import annotations

import re

__all__ = ["ABBREVIATIONS", "ELLIPSIS", "one_line", "sentences", "truncate"]

# Words ending in "." that do not end a sentence (compared without the final dot).
ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "et al", "etc", "vs", "cf", "Fig", "Eq", "Sec", "approx", "resp"}
)
# A sentence ends at . ! ? followed by space and a capital, a digit or a quote; not after
# an abbreviation or (optionally) a single capital, an initial.
_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'“(\[])")
_GLUED = re.compile(r"(?<=[a-z]{2}[.!?])(?=[A-Z][a-z])")  # "concepts.To tackle"


def sentences(text: str, *, initials: bool = True) -> list[str]:
    """The sentences of ``text``, whitespace folded (abbreviations such as "e.g." do not
    end one, nor, with ``initials``, a single capital as in "J. Smith"; "end.Next" glued
    by a lost line break does)."""
    text = _GLUED.sub(" ", " ".join(text.split()))
    parts, start = [], 0
    for m in _END.finditer(text):
        before = text[start : m.start()]
        tail = before.rsplit(" ", 1)[-1].rstrip(".!?")
        if tail in ABBREVIATIONS or (initials and re.fullmatch(r"[A-Z]", tail)):
            continue
        parts.append(before)
        start = m.end()
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


ELLIPSIS = "…"
_TRAILING_PUNCT = ".,;:-–—([{"  # a cut ending a sentence gets "…", not ".…"


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """Cut ``text`` at a word boundary so that it, with a trailing "…", fits in ``limit``
    characters; punctuation left dangling at the cut goes. Returns ``(short, truncated)``:
    a text that already fits comes back unchanged, a single word longer than the limit
    is cut inside the word."""
    if limit < 2:
        raise ValueError(f"truncate: limit must be at least 2, got {limit}")
    if len(text) <= limit:
        return text, False
    head = text[: limit - len(ELLIPSIS) + 1]  # one extra char: is the cut on a boundary?
    if head[-1].isspace():
        cut = head.rstrip()
    else:
        cut = head[:-1]
        space = max(cut.rfind(" "), cut.rfind("\n"), cut.rfind("\t"))
        if space > 0:
            cut = cut[:space]
    cut = cut.rstrip().rstrip(_TRAILING_PUNCT).rstrip()
    if not cut:  # all punctuation or one giant word
        cut = text[: limit - len(ELLIPSIS)]
    return cut + ELLIPSIS, True


def one_line(text: str) -> str:
    """Outside text on one line: every character that is not printable (line breaks,
    control and format characters, unusual spaces) becomes a space, and runs of spaces
    fold into one."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(text.split())
