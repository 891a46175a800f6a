"""One line per paper that says what it does: the abstract's contribution sentence.

Extractive, no model: the abstract is split into sentences; the first one that states the
contribution ("we introduce / propose / present …", "this paper proposes …") wins, a
finding ("we show / find / demonstrate …") if there is none, else the first sentence. A
leading connective ("To this end, ", "In this paper, ") is dropped, LaTeX and URLs are
removed, and a long sentence is cut at a word with "…".
"""

from __future__ import annotations

import re

from digest.ingest.links import tidy_text

__all__ = ["MAX_CHARS", "one_line", "sentences"]

MAX_CHARS = 220

_VERBS_MADE = (
    "introduce|introduces|propose|proposes|present|presents|develop|develops|design|designs|"
    "build|builds|construct|constructs|release|releases|curate|curates|create|creates|"
    "contribute|contributes|offer|offers|describe|describes|formulate|formulates|"
    "devise|devises|unveil|unveils|establish|establishes|provide|provides|train|trains"
)
_VERBS_FOUND = (
    "show|shows|find|finds|demonstrate|demonstrates|reveal|reveals|prove|proves|"
    "study|studies|investigate|investigates|explore|explores|analyze|analyzes|analyse|"
    "examine|examines|argue|argues|identify|identifies|evaluate|evaluates"
)
_SUBJECT = r"(?:we|this (?:paper|work|study|article|report|survey)|our (?:work|paper|survey))"
_ADVERB = r"(?:\s+(?:first|also|further|then|here|thus|therefore|instead|newly|systematically))?"
_MADE = re.compile(rf"\b{_SUBJECT}{_ADVERB}\s+(?:{_VERBS_MADE})\b", re.I)
_FOUND = re.compile(rf"\b{_SUBJECT}{_ADVERB}\s+(?:{_VERBS_FOUND})\b", re.I)
_HERE = re.compile(
    r"^(?:in this (?:paper|work|study|article|report|survey)|here"
    r"|in our (?:paper|work|survey))\s*,?\s+we\b"
    r"|^this (?:paper|work|study|article|report)\s+\w+s\b",
    re.I,
)
_NAMED = re.compile(r"^(?:we present|introducing|meet)\b|\bis (?:a|an) (?:novel|new)\b", re.I)

# A sentence ends at . ! ? followed by space and a capital, a digit or a quote; not after
# a common abbreviation or a single capital (initials).
_ABBREVIATIONS = ("e.g", "i.e", "et al", "etc", "vs", "cf", "Fig", "Eq", "Sec", "approx", "resp")
_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_LEAD = re.compile(
    r"^(?:(?:to (?:this end|address (?:this|these)(?: \w+)?|tackle (?:this|these)(?: \w+)?|"
    r"fill this gap|bridge this gap|overcome (?:this|these)(?: \w+)?)|in this (?:paper|work|"
    r"study|article|report)|here|specifically|therefore|thus|accordingly|consequently|"
    r"motivated by (?:this|these)(?: \w+)?|in response|in contrast|instead|finally|"
    r"to (?:do so|that end)),\s+)+",
    re.I,
)
_CLAUSE = re.compile(r"^[^,;:()]{1,90},\s+(?=we\s)", re.I)  # "Inspired by this, we …"
_GLUED = re.compile(r"(?<=[a-z]{2}[.!?])(?=[A-Z][a-z])")  # "concepts.To tackle"
_URL = re.compile(r"\(?\s*(?:https?://|www\.)\S+")
_MATH = re.compile(r"\$[^$]*\$")
_COMMAND = re.compile(r"\\[A-Za-z]+\*?")
_BRACES = re.compile(r"[{}\\^_~$]")


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (abbreviations such as "e.g." do not end one)."""
    text = _GLUED.sub(" ", " ".join(text.split()))
    parts, start = [], 0
    for m in _END.finditer(text):
        before = text[start : m.start()]
        tail = before.rsplit(" ", 1)[-1].rstrip(".!?")
        if tail in _ABBREVIATIONS or re.fullmatch(r"[A-Z]", tail):
            continue
        parts.append(before)
        start = m.end()
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _plain(sentence: str) -> str:
    """A sentence as plain text: LaTeX, math and URLs removed, spaces tidied."""
    text = tidy_text(sentence)
    text = _URL.sub("", text)
    text = _MATH.sub(lambda m: _BRACES.sub("", _COMMAND.sub("", m.group(0))).strip(), text)
    text = _COMMAND.sub("", text)
    text = _BRACES.sub("", text)
    text = re.sub(r"\s+([,.;:!?)])", r"\1", text)
    text = re.sub(r"\(\s*\)", "", text)
    return " ".join(text.split())


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:-–—(") + "…"


def _choose(parts: list[str]) -> str:
    for pattern in (_MADE, _HERE, _NAMED, _FOUND):
        for part in parts:
            if pattern.search(part):
                return part
    return parts[0]


def one_line(abstract: str, limit: int = MAX_CHARS) -> str:
    """The sentence of ``abstract`` that states the contribution, as plain text of at most
    ``limit`` characters ("" for an empty abstract)."""
    parts = [p for p in (_plain(s) for s in sentences(abstract)) if len(p.split()) >= 3]
    if not parts:
        return _trim(_plain(abstract), limit)
    chosen = _CLAUSE.sub("", _LEAD.sub("", _choose(parts)).strip())
    if chosen and chosen[0].islower():
        chosen = chosen[0].upper() + chosen[1:]
    return _trim(chosen, limit)
