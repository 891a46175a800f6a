"""Text helpers shared by every stage: the one sentence splitter. Pure; imports nothing
of digest."""

from __future__ import annotations

import re

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
